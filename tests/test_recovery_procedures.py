"""Data and model recovery procedures end in a named safe state with what was done: the primary switch on the local
vendor server, a session's data (failover, quarantine, staleness), and the fallback ladder's report."""
import concurrent.futures as cf

import httpx

from vendor_http_server import VendorServer
from trading_workbench.core.config import Secret
from trading_workbench.data.manager import DataSourceManager
from trading_workbench.data.sources import AlphaVantageSource, BundledSource, CsvSource, YFinanceSource
from trading_workbench.recovery.procedures import (FailureClass, SafeState, failover_data_source, journal,
                                                   recover_market_data, recover_models)
from trading_workbench.signals.runner import ModelJob, ModelRunner, with_ladder


def test_primary_switch_to_the_first_source_that_answers(store, clock):
    with VendorServer(alpha_vantage_premium=True) as srv, httpx.Client(timeout=2) as client:
        kw = dict(retries=0, backoff_s=0, clock=clock)
        srcs = [YFinanceSource(srv.base_url('yahoo'), client, **kw),
                AlphaVantageSource(srv.base_url('alphavantage'), client, Secret('av-test-key-123'), premium=True, **kw)]
        mgr = DataSourceManager(srcs, store, clock=clock)
        srv.inject('yahoo', 'server_error')
        res = failover_data_source(mgr)
        assert (res.failure, res.state, res.detail['primary']) == (FailureClass.DATA, SafeState.RECOVERED,
                                                                   'alpha_vantage')
        assert res.actions[0] == 'yfinance does not answer' and 'alpha_vantage is now primary' in res.actions[1]
        # persisted for the next run
        assert DataSourceManager(srcs, store, clock=clock).primary == 'alpha_vantage'
        srv.inject('yahoo', 'server_error'); srv.inject('alphavantage', 'demo_key')
        dead = failover_data_source(mgr)
        assert (
            dead.state == SafeState.NO_TRADING
            and dead.actions[-1] == 'all data sources unavailable'
            and not dead.trading_allowed
        )
        journal(store, dead)
        assert store.alerts().query("source == 'recovery.data'").severity.iloc[0] == 'error'


def test_session_data_states(tmp_path, store, clock):
    mgr = DataSourceManager([CsvSource(tmp_path / 'missing-dir'), BundledSource()], store, clock=clock,
                            default_start='2017-01-03')
    res, data = recover_market_data(mgr, ['AAPL', 'MSFT'], '2018-02-07')
    assert res.state == SafeState.RECOVERED and list(data.fresh) == ['AAPL', 'MSFT']
    assert res.actions == ('AAPL served by bundled after csv failed', 'MSFT served by bundled after csv failed')
    mgr = DataSourceManager([BundledSource()], store, clock=clock, default_start='2017-01-03')
    res, _ = recover_market_data(mgr, ['AAPL', 'SPY', 'ZZZZ'], '2018-02-07')              # SPY's file ends 2017-12-29
    assert res.state == SafeState.DEGRADED and res.detail == dict(session='2018-02-07', ok=1, stale=1, quarantined=0,
                                                                  missing=1, failed=0)
    assert res.actions == ('SPY left out (stale)', 'ZZZZ left out (no source has it)')


def fine(ctx): return dict(action='BUY', confidence=0.6, risk_score=0.3, expected_return=0.01)
def broken(ctx): raise RuntimeError('no convergence')


def test_model_states_from_the_ladder(clock):
    bars = {t: BundledSource().history(t) for t in ('AAPL', 'MSFT')}
    with cf.ThreadPoolExecutor(2) as ex:
        run = lambda jobs: ModelRunner(ex, jobs, clock=clock, slots=2).run(bars)
        assert recover_models(run([ModelJob('fine', fine)])).state == SafeState.RECOVERED
        res = recover_models(run([ModelJob('fine', fine),
                                  with_ladder(ModelJob('broken', broken), ModelJob('simple', fine))]))
        assert res.state == SafeState.DEGRADED and res.detail == dict(signals=4, fallbacks=2, model_failures=2)
        assert sorted(res.actions) == ['broken on AAPL: rung 1 (simple)', 'broken on MSFT: rung 1 (simple)']
        none = recover_models(run([with_ladder(ModelJob('broken', broken))]))
        # two HOLDs, nothing to trade on
        assert none.state == SafeState.NO_TRADING and none.detail['signals'] == 2
        assert str(none).startswith('model/fallback_ladder: no_trading')
