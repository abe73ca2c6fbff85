"""LLMSignalGenerator against a local server speaking Ollama's /api/chat and /api/tags, with every failure path."""
import pickle

import pytest

from ollama_server import OllamaServer, refused_url
from trading_workbench.core.types import Action
from trading_workbench.data.sources import BundledSource
from trading_workbench.models.llm import (ANSWER_SCHEMA, LLMResponseError, LLMServerError, LLMSignalGenerator,
                                          LLMTimeout, LLMTruncated, LLMUnavailable, MarketContext)

MODEL = 'llama3.1:8b'


@pytest.fixture(scope='module')
def ctx():
    bars = BundledSource().history('MSFT', end='2018-02-07')
    return MarketContext.from_bars('MSFT', bars, '2018-02-07 21:00', horizon=5)


@pytest.fixture
def srv():
    with OllamaServer(slow_s=3) as s: yield s


@pytest.fixture(params=[False, True], ids=['json', 'ndjson-stream'])
def gen(request, srv):
    g = LLMSignalGenerator(srv.url, MODEL, timeout_s=1.0, stream=request.param)
    yield g
    g.close()


def test_signal_from_real_context(gen, srv, ctx):
    s = gen.generate(ctx)
    assert (s.ticker, s.model, s.horizon, s.current_price) == ('MSFT', 'llm', 5, ctx.current_price)
    assert s.provenance.parameters['llm_model'] == MODEL and s.provenance.data_end.date().isoformat() == '2018-02-07'
    body = srv.chat_requests()[-1]
    assert body['model'] == MODEL and body['format'] == ANSWER_SCHEMA and body['stream'] is gen.stream
    assert [m['role'] for m in body['messages']] == ['system',
                                                     'user'] and '"ticker": "MSFT"' in body['messages'][1]['content']
    # the default answer follows the 20-day return it was sent
    r20 = ctx.stats['return_20d']
    assert s.action == (Action.BUY if r20 > 0.01 else Action.SELL if r20 < -0.01 else Action.HOLD)


@pytest.mark.parametrize('fault, exc, text', [
    ('slow', LLMTimeout, 'no answer within 1 s'),
    ('refusal', LLMResponseError, 'content: not JSON'),
    ('out_of_range', LLMResponseError, 'confidence: must be within [0, 1], got 1.7'),
    ('missing_field', LLMResponseError, 'risk_score: missing'),
    ('nan', LLMResponseError, 'NaN is not a number'),
    ('contradiction', LLMResponseError, 'contradicts action BUY'),
    ('error_500', LLMServerError, 'llama runner process has terminated'),
    ('not_found', LLMUnavailable, 'not found, try pulling it first'),
    ('disconnect', LLMUnavailable, 'RemoteProtocolError'),
])
def test_faults_are_typed_errors(gen, srv, ctx, fault, exc, text):
    srv.inject(fault)
    with pytest.raises(exc, match=None) as ei: gen.generate(ctx)
    assert text in str(ei.value)
    assert gen.generate(ctx).model == 'llm'        # the next answer is fine again: nothing sticky


def test_malformed_body(srv, ctx):
    g = LLMSignalGenerator(srv.url, MODEL, timeout_s=2)
    srv.inject('malformed')
    with pytest.raises(LLMResponseError) as ei: g.generate(ctx)
    assert ei.value.field == 'body' and 'not JSON' in str(ei.value)


def test_stream_breaks_off_with_error(srv, ctx):
    g = LLMSignalGenerator(srv.url, MODEL, timeout_s=2, stream=True)
    srv.inject('stream_error')
    with pytest.raises(LLMServerError, match='unexpected EOF'): g.generate(ctx)


def test_out_of_range_is_never_clipped(srv, ctx):
    g = LLMSignalGenerator(srv.url, MODEL, timeout_s=2)
    srv.state.answer = lambda req: dict(action='BUY', confidence=0.7, risk_score=-0.1, expected_return=0.02)
    with pytest.raises(LLMResponseError) as ei: g.generate(ctx)
    assert ei.value.field == 'risk_score'
    srv.state.answer = lambda req: dict(action='SELL', confidence=0.7, risk_score=0.2, expected_return=-0.9)
    with pytest.raises(LLMResponseError, match='expected_return: must be within'): g.generate(ctx)


def test_down_and_health(ctx):
    g = LLMSignalGenerator(refused_url(), MODEL, timeout_s=2)
    with pytest.raises(LLMUnavailable, match='ConnectError'): g.check()
    with pytest.raises(LLMUnavailable): g.generate(ctx)
    with OllamaServer(models=['mistral:7b']) as s:
        g = LLMSignalGenerator(s.url, MODEL, timeout_s=2)
        assert g.available_models() == ['mistral:7b']
        with pytest.raises(LLMUnavailable, match='ollama pull llama3.1:8b'): g.check()
    with OllamaServer(models=['mistral:latest']) as s:
        LLMSignalGenerator(s.url, 'mistral', timeout_s=2).check()     # Ollama's implicit :latest tag


def test_server_going_down_mid_session(ctx):
    s = OllamaServer().start()
    g = LLMSignalGenerator(s.url, MODEL, timeout_s=2)
    assert g.generate(ctx).model == 'llm'
    s.down()
    with pytest.raises(LLMUnavailable): g.generate(ctx)


def test_pickles_without_its_connection(srv, ctx):
    g = LLMSignalGenerator(srv.url, MODEL, timeout_s=2)
    g.generate(ctx)
    g2 = pickle.loads(pickle.dumps(g))
    assert g2._client is None and g2.generate(ctx).ticker == 'MSFT'


def test_from_settings_and_bad_arguments(settings):
    g = LLMSignalGenerator.from_settings(settings)
    assert (g.host, g.model, g.timeout_s) == (settings.llm.host, settings.llm.model, settings.llm.timeout_s)
    with pytest.raises(ValueError, match='host'): LLMSignalGenerator('127.0.0.1:11434', MODEL)
    with pytest.raises(ValueError, match='timeout_s'): LLMSignalGenerator('http://127.0.0.1:1', MODEL, timeout_s=0)


def test_context_needs_enough_clean_bars():
    bars = BundledSource().history('MSFT', end='2018-02-07')
    with pytest.raises(ValueError, match='need at least 61'): MarketContext.from_bars('MSFT', bars.iloc[:60],
                                                                                      '2018-02-07')
    bad = bars.copy(); bad.iloc[-3, bad.columns.get_loc('close')] = float('nan')
    with pytest.raises(ValueError, match='must be finite and > 0'): MarketContext.from_bars('MSFT', bad, '2018-02-07')


def test_answer_cut_off_by_its_length_limit_is_a_failure_even_when_it_parses(gen, srv, ctx):
    "Ollama's done_reason 'length' means the model never finished: the text that arrived is not its answer."
    srv.inject('length')
    with pytest.raises(LLMTruncated, match="done_reason: 'length'") as e:
        gen.generate(ctx)
    # the text itself was fine JSON
    assert isinstance(e.value, LLMResponseError) and e.value.content.startswith('{"action"')
    # the next, finished answer is used
    assert gen.generate(ctx).model == 'llm'
