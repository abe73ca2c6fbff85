"""ModelRunner on real executors (a ModelPool of processes, threads, a dask LocalCluster) with models that fail
in every way: raising, hanging past the timeout, returning NaN or garbage, killing their worker; and the LLM
slow, refusing or down (a local server speaking Ollama's API)."""
import asyncio, concurrent.futures as cf, os, threading, time

import pytest

from ollama_server import OllamaServer, refused_url
from trading_workbench.core.clock import FixedClock
from trading_workbench.core.config import SettingsError
from trading_workbench.core.types import Provenance, Signal, utc
from trading_workbench.data.sources import BundledSource
from trading_workbench.models.llm import LLMSignalGenerator
from trading_workbench.signals.runner import (DaskExecutor, ModelJob, ModelPool, ModelRunner, consensus_job,
                                              default_jobs, forecaster_job, llm_job, make_executor, with_ladder)

AS_OF = '2018-02-07 21:00'
TICKERS = ('AAPL', 'MSFT', 'JPM')


# -- jobs: module level so that worker processes can import them --------------------------------------------------
def momentum(ctx):
    r = float(ctx.bars['close'].iloc[-1] / ctx.bars['close'].iloc[-21] - 1)
    return dict(action='BUY' if r > 0 else 'SELL', confidence=0.55, risk_score=0.4, expected_return=r / 4)

def raises(ctx): raise RuntimeError(f'singular matrix fitting {ctx.ticker}')
def returns_nan(ctx): return dict(action='HOLD', confidence=float('nan'), risk_score=0.4, expected_return=0.0)
def returns_nan_float(ctx): return float('nan')
def hangs(ctx): time.sleep(120); return dict(action='HOLD', confidence=0.5, risk_score=0.5, expected_return=0.0)
RELEASE = threading.Event()
def hangs_thread(ctx): RELEASE.wait(120); return dict(action='HOLD', confidence=0.5, risk_score=0.5,
                                                      expected_return=0.0)
def hangs_on_msft(ctx): return hangs(ctx) if ctx.ticker == 'MSFT' else momentum(ctx)
def kills_worker(ctx):
    if ctx.ticker == 'AAPL': os._exit(3)
    return momentum(ctx)
def wrong_ticker(ctx):
    return Signal('ZZZ', 'HOLD', 0.5, 0.5, 0.0, 5, 1.0, ctx.as_of, Provenance('wrong_ticker', '1'))
def last_bar(ctx):
    return dict(action='HOLD', confidence=0.5, risk_score=0.5, expected_return=0.0,
                current_price=float(ctx.bars['close'].iloc[-1]))
def simple_unless_jpm(ctx):
    if ctx.ticker == 'JPM': raise ValueError('too few bars for the simple model')
    return dict(action='SELL', confidence=0.52, risk_score=0.5, expected_return=-0.001)
def sees_prior(ctx):
    return dict(action='HOLD', confidence=0.5, risk_score=0.5, expected_return=0.0) if ctx.prior else raises(ctx)


@pytest.fixture(scope='module')
def universe():
    src = BundledSource()
    return {t: src.history(t) for t in TICKERS}


@pytest.fixture(scope='module')
def pool():
    p = ModelPool(2)
    p.warm()
    yield p
    p.shutdown(cancel_futures=True)


def runner(executor, jobs, **kw):
    kw.setdefault('timeout_s', 30)
    return ModelRunner(executor, jobs, clock=FixedClock(AS_OF), slots=kw.pop('slots', 2), **kw)


def statuses(rep):
    return rep.to_frame().groupby(['model', 'status']).size().to_dict()


def test_failures_are_reported_never_fatal(pool, universe):
    jobs = [ModelJob('momentum', momentum), ModelJob('raises', raises), ModelJob('nan', returns_nan),
            ModelJob('nan_float', returns_nan_float), ModelJob('wrong_ticker', wrong_ticker)]
    rep = runner(pool, jobs).run(universe, run_id='t1')
    assert statuses(rep) == {('momentum', 'ok'): 3, ('raises', 'error'): 3, ('nan', 'invalid'): 3,
                             ('nan_float', 'invalid'): 3, ('wrong_ticker', 'invalid'): 3}
    assert [s.model for s in rep.signals] == ['momentum'] * 3
    f = next(o for o in rep.failures if o.model == 'raises' and o.ticker == 'JPM')
    assert f.error_type == 'RuntimeError' and 'singular matrix fitting JPM' in f.message
    assert 'in raises' in f.traceback and 'Traceback' in f.traceback and f.host
    assert 'Signal.confidence: must be finite' in next(o.message for o in rep.failures if o.model == 'nan')
    assert "is for 'ZZZ'" in next(o.message for o in rep.failures if o.model == 'wrong_ticker')
    s = rep.summary()
    assert s['by_model']['raises'] == {'error': 3} and len(s['failures']) == 12 and s['n_signals'] == 3


def test_timeout_recycles_the_pool_and_the_run_goes_on(universe):
    p = ModelPool(2)
    try:
        rep = runner(p, [ModelJob('momentum', momentum), ModelJob('slowpoke', hangs_on_msft)],
                     timeout_s=3).run(universe)
        assert statuses(rep) == {('momentum', 'ok'): 3, ('slowpoke', 'ok'): 2, ('slowpoke', 'timeout'): 1}
        assert p.recycles >= 1                                   # the hung worker was killed, not left running
        again = runner(p, [ModelJob('momentum', momentum)]).run(universe)
        assert statuses(again) == {('momentum', 'ok'): 3}
    finally:
        p.shutdown(cancel_futures=True)


def test_every_slot_hung_then_recycled(universe):
    p = ModelPool(2)
    try:
        rep = runner(p, [ModelJob('hangs', hangs), ModelJob('momentum', momentum)], timeout_s=2,
                     give_up_after=99).run(universe)
        assert statuses(rep) == {('hangs', 'timeout'): 3, ('momentum', 'ok'): 3}
    finally:
        p.shutdown(cancel_futures=True)


def test_threads_cannot_be_killed_so_the_rest_is_skipped(universe):
    ex = cf.ThreadPoolExecutor(2)
    try:
        rep = runner(ex, [ModelJob('hangs', hangs_thread), ModelJob('momentum', momentum)], timeout_s=1,
                     give_up_after=99).run(universe)
    finally:
        RELEASE.set(); ex.shutdown()
    st = statuses(rep)
    assert st[('hangs', 'timeout')] == 2 and st[('hangs', 'skipped')] == 1 and st[('momentum', 'ok')] == 1
    assert 'every worker is stuck' in next(o.message for o in rep.outcomes if o.status == 'skipped')


def test_a_model_that_kills_its_worker(universe):
    p = ModelPool(2)
    try:
        rep = runner(p, [ModelJob('killer', kills_worker), ModelJob('momentum', momentum)]).run(universe)
        killed = [o for o in rep.outcomes if o.status != 'ok']
        assert all(o.status == 'error' and o.error_type == 'BrokenProcessPool' for o in killed)
        assert ('killer', 'AAPL') in {(o.model, o.ticker) for o in killed}
        assert len(rep.outcomes) == 6                            # every job accounted for, crash or not
        # the broken pool is recycled on the next submit: the next run works
        again = runner(p, [ModelJob('killer', kills_worker)]).run({t: universe[t] for t in ('MSFT', 'JPM')})
        assert statuses(again) == {('killer', 'ok'): 2}
    finally:
        p.shutdown(cancel_futures=True)


def test_real_models_in_a_pool_with_the_llm_down(pool, universe, settings):
    jobs = default_jobs(settings)
    jobs[-1] = llm_job(LLMSignalGenerator(refused_url(), 'llama3.1:8b', timeout_s=2))
    rep = ModelRunner.from_settings(settings, pool, jobs, FixedClock(AS_OF)).run(universe, run_id='real')
    assert set(rep.unavailable) == {'llm'} and 'ConnectError' in rep.unavailable['llm']
    assert statuses(rep)[('llm', 'unavailable')] == 3
    assert {(s.model, s.ticker) for s in rep.signals} == {(m, t) for m in ('samossa', 'sarimax', 'garch', 'mssa_rl')
                                                          for t in TICKERS}
    for s in rep.signals:
        p = s.provenance
        assert p.version and p.parameters and p.host and p.fit_seconds > 0
        assert p.data_end.date().isoformat() == '2018-02-07'
        assert (p.data_end - p.data_start).days > 365 * 3           # history_days = 1000 bars


def test_llm_stage_sees_the_other_models_and_gives_up_when_slow(universe):
    with OllamaServer(slow_s=3) as srv, cf.ThreadPoolExecutor(2) as ex:
        gen = LLMSignalGenerator(srv.url, 'llama3.1:8b', timeout_s=5)
        rep = runner(ex, [ModelJob('momentum', momentum), llm_job(gen)]).run(universe)
        assert statuses(rep) == {('momentum', 'ok'): 3, ('llm', 'ok'): 3}
        for body in srv.chat_requests():
            assert '"model": "momentum"' in body['messages'][1]['content']   # the prompt carries the stage-0 signal
        srv.inject('slow', 'slow', 'slow')
        gen = LLMSignalGenerator(srv.url, 'llama3.1:8b', timeout_s=0.5)
        rep = runner(ex, [ModelJob('momentum', momentum), llm_job(gen)], slots=1).run(universe)
        st = statuses(rep)
        assert st[('llm', 'error')] == 2 and st[('llm', 'unavailable')] == 1 and 'LLMTimeout' in rep.unavailable['llm']
        assert st[('momentum', 'ok')] == 3


@pytest.mark.parametrize('fault', ['refusal', 'out_of_range', 'error_500', 'malformed'])
def test_llm_bad_answers_are_reported(universe, fault):
    with OllamaServer() as srv, cf.ThreadPoolExecutor(2) as ex:
        srv.inject(fault)
        rep = runner(ex, [llm_job(LLMSignalGenerator(srv.url, 'llama3.1:8b', timeout_s=5))], slots=1).run(universe)
        bad = [o for o in rep.outcomes if o.status != 'ok']
        assert len(bad) == 1 and bad[0].error_type in ('LLMResponseError', 'LLMServerError') and len(rep.signals) == 2


def test_no_look_ahead_and_bad_tickers_fail_alone(universe):
    data = dict(universe, BAD=universe['AAPL'].drop(columns='close'), EMPTY=universe['AAPL'].iloc[:0])
    with cf.ThreadPoolExecutor(2) as ex:
        rep = runner(ex, [ModelJob('last_bar', last_bar)], history_days=250).run(data, as_of='2016-06-30 21:00')
    st = {(o.ticker, o.status) for o in rep.outcomes}
    assert {('BAD', 'error'), ('EMPTY', 'error'), ('AAPL', 'ok'), ('MSFT', 'ok'), ('JPM', 'ok')} == st
    aapl = next(s for s in rep.signals if s.ticker == 'AAPL')
    assert aapl.provenance.data_end.date().isoformat() == '2016-06-30'
    assert aapl.current_price == float(universe['AAPL'].loc[:'2016-06-30', 'close'].iloc[-1])
    bars_used = universe['AAPL'].loc[:'2016-06-30'].iloc[-250:]
    assert aapl.provenance.data_start == utc(bars_used.index[0])


def test_stages_wait_for_their_ticker(universe):
    with cf.ThreadPoolExecutor(2) as ex:
        rep = runner(ex, [ModelJob('momentum', momentum), ModelJob('late', sees_prior, stage=1)]).run(universe)
    assert statuses(rep) == {('momentum', 'ok'): 3, ('late', 'ok'): 3}


def test_only_enabled_models_run_and_async_entry(universe):
    with cf.ThreadPoolExecutor(2) as ex:
        r = runner(ex, [ModelJob('momentum', momentum), ModelJob('raises', raises)])
        rep = asyncio.run(r.run_async(universe, models=['momentum'], run_id='a'))
        assert statuses(rep) == {('momentum', 'ok'): 3} and rep.run_id == 'a'
        with pytest.raises(ValueError, match="unknown \\['gpt'\\]"): r.run(universe, models=['gpt'])
    with pytest.raises(ValueError, match='names must be unique'): runner(ex,
                                                                         [ModelJob('a', momentum),
                                                                          ModelJob('a', raises)])


def test_dask_local_cluster(universe, settings):
    from distributed import LocalCluster
    from trading_workbench.models.garch import GARCHForecaster
    from trading_workbench.models.samossa import SAMoSSA
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None) as cluster:
        ex = DaskExecutor(cluster.scheduler_address)
        try:
            jobs = [forecaster_job(SAMoSSA), forecaster_job(GARCHForecaster), ModelJob('raises', raises)]
            rep = runner(ex, jobs).run(universe)
            assert statuses(rep) == {('samossa', 'ok'): 3, ('garch', 'ok'): 3, ('raises', 'error'): 3}
            assert 'singular matrix' in next(o.traceback for o in rep.failures)
        finally:
            ex.shutdown()


def test_make_executor(settings):
    import dataclasses
    with pytest.raises(SettingsError, match='dask_scheduler'):
        make_executor(dataclasses.replace(settings,
                                          runner=dataclasses.replace(settings.runner, executor='dask',
                                                                     dask_scheduler='')))
    ex = make_executor(dataclasses.replace(settings, runner=dataclasses.replace(settings.runner, executor='threads')))
    assert isinstance(ex, cf.ThreadPoolExecutor); ex.shutdown()
    p = make_executor(settings)
    assert isinstance(p, ModelPool) and p.max_workers == settings.runner.max_workers
    p.shutdown()


# -- the fallback ladder: the failed model, then a simpler one, then HOLD ------------------------------------------

def rungs(rep, model):
    return {s.ticker: (s.provenance.parameters['rung'], s.provenance.parameters['rung_model']) for s in rep.signals
            if s.model == model and 'rung' in s.provenance.parameters}


def test_ladder_in_a_process_pool(pool, universe):
    jobs = [ModelJob('momentum', momentum),
            with_ladder(ModelJob('raises', raises), ModelJob('simple', simple_unless_jpm))]
    rep = runner(pool, jobs).run(universe, run_id='ladder')
    assert rungs(rep, 'raises') == {'AAPL': (1, 'simple'), 'MSFT': (1, 'simple'), 'JPM': (2, 'hold')}
    assert rungs(rep, 'momentum') == {}                                   # no ladder, no rung stamp
    jpm = next(s for s in rep.signals if s.model == 'raises' and s.ticker == 'JPM')
    assert (jpm.action.value, jpm.confidence, jpm.risk_score, jpm.expected_return) == ('HOLD', 0.0, 1.0, 0.0)
    failed = jpm.provenance.parameters['failed']
    assert [f['model'] for f in failed] == ['raises', 'simple'] and 'singular matrix fitting JPM' in failed[0]['error']
    st = statuses(rep)
    assert st[('raises', 'error')] == 4 and st[('raises', 'ok')] == 3    # the model's own failures stay in the report
    assert {(f['ticker'], f['rung_model']) for f in rep.summary()['fallbacks']} == {('AAPL', 'simple'),
                                                                                    ('MSFT', 'simple'), ('JPM', 'hold')}
    assert len(rep.fallbacks) == 3


def test_ladder_after_a_timeout(universe):
    p = ModelPool(2)
    try:
        jobs = [with_ladder(ModelJob('slowpoke', hangs_on_msft), ModelJob('simple', simple_unless_jpm))]
        rep = runner(p, jobs, timeout_s=3).run(universe)
        assert rungs(rep, 'slowpoke') == {'AAPL': (0, 'slowpoke'), 'MSFT': (1, 'simple'), 'JPM': (0, 'slowpoke')}
        assert next(o for o in rep.outcomes if o.ticker == 'MSFT' and o.rung == 0).status == 'timeout'
    finally:
        p.shutdown(cancel_futures=True)


def test_truncated_llm_answer_falls_back_to_the_consensus(universe):
    """Ollama's done_reason 'length' fails the LLM even though its text parses; the slot is filled by
    the consensus of the views."""
    with OllamaServer() as srv, cf.ThreadPoolExecutor(2) as ex:
        srv.inject('length')
        job = with_ladder(llm_job(LLMSignalGenerator(srv.url, 'llama3.1:8b', timeout_s=5)), consensus_job())
        rep = runner(ex, [ModelJob('momentum', momentum), job], slots=1).run(universe)
    got = rungs(rep, 'llm')
    assert sorted(v for v in got.values()) == [(0, 'llm'), (0, 'llm'), (1, 'consensus')]
    t = next(k for k, v in got.items() if v == (1, 'consensus'))
    cons = next(s for s in rep.signals if s.model == 'llm' and s.ticker == t)
    mom = next(s for s in rep.signals if s.model == 'momentum' and s.ticker == t)
    # one view: the consensus is that view, no surer
    assert cons.action == mom.action and cons.confidence == mom.confidence
    assert 'LLMTruncated' in cons.provenance.parameters['failed'][0]['error']


def test_ladder_does_not_hide_a_dead_service(universe):
    "LLM timeouts: the first ones fall back, then the runner gives up on it (unavailable), as without a ladder."
    with OllamaServer(slow_s=3) as srv, cf.ThreadPoolExecutor(2) as ex:
        srv.inject('slow', 'slow', 'slow')
        job = with_ladder(llm_job(LLMSignalGenerator(srv.url, 'llama3.1:8b', timeout_s=0.5)), consensus_job())
        rep = runner(ex, [ModelJob('momentum', momentum), job], slots=1).run(universe)
    st = statuses(rep)
    assert st[('llm', 'error')] == 2 and st[('llm', 'unavailable')] == 1 and 'LLMTimeout' in rep.unavailable['llm']
    assert sorted(rungs(rep, 'llm').values()) == [(1, 'consensus'), (1, 'consensus')]


def test_default_jobs_have_ladders(settings):
    jobs = default_jobs(settings)
    assert all(j.hold_on_failure and len(j.fallbacks) == 1 for j in jobs)
    assert [(j.name, j.fallbacks[0].name, dict(j.fallbacks[0].params)) for j in jobs] == [
        ('samossa', 'samossa', {'rank': 1}), ('sarimax', 'sarimax', {'order': (0, 1, 0)}),
        ('garch', 'garch', {'dist': 'normal'}), ('mssa_rl', 'samossa', {}), ('llm', 'consensus', {})]
    assert jobs[-1].fallbacks[0].stage == 1
