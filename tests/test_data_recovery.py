"""Data-failure recovery: poisoned tickers are quarantined (never stored, never failing the others), stale and unknown
tickers get a typed status, a down source costs at most its time budget once per run, and the daily run says clearly
when there is nothing to trade. Real bars, real SQLite, vendors on the local vendor HTTP server."""
import os, subprocess, sys
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

from vendor_http_server import VendorServer
from trading_workbench.core.clock import FixedClock
from trading_workbench.core.config import Secret
from trading_workbench.data.manager import (DataSourceManager, NoUsableData, quarantined, release_quarantine)
from trading_workbench.data.sources import AlphaVantageSource, BundledSource, CsvSource, YFinanceSource
from trading_workbench.features.builder import TimeSeriesFeatureBuilder
from trading_workbench.ops.daily import market_data, plan_day
from trading_workbench.core.config import Settings
from trading_workbench.store.db import Store

ROOT = Path(__file__).resolve().parents[1]
FIX = Path(__file__).resolve().parent / 'fixtures' / 'prices'
BUNDLED = BundledSource()
OHLC = ['open', 'high', 'low', 'close']


def poisoned(ticker, how):
    "Real bars of `ticker` with one kind of poison near the end of 2017."
    df = BUNDLED.history(ticker).astype('float64')
    d = '2017-11-01'
    if how == '1e308 prices': df.loc[d, ['high', 'close']] = 1e308
    if how == '1e308 volume': df.loc[d, 'volume'] = 1e308
    if how == 'inf close': df.loc[d, ['high', 'close']] = np.inf
    if how == '37x spike': df.loc[d, OHLC] *= 37
    if how == '70% drop that reverts': df.loc[d, OHLC] *= 0.3
    return df


@pytest.mark.parametrize('how', ['1e308 prices', '1e308 volume', 'inf close', '37x spike', '70% drop that reverts'])
def test_poisoned_ticker_is_quarantined_and_never_fails_the_others(tmp_path, store, clock, how):
    folder = tmp_path / 'csv'; folder.mkdir()
    poisoned('KO', how).to_csv(folder / 'BAD.csv')
    for t in ('AAPL', 'MSFT'): BUNDLED.history(t).to_csv(folder / f'{t}.csv')
    mgr = DataSourceManager([CsvSource(folder)], store, clock=clock, default_start='2013-02-08')
    data = mgr.load(['AAPL', 'BAD', 'MSFT'], end='2018-02-07', progress=False)
    assert {s.ticker: s.status for s in data.statuses} == {'AAPL': 'ok', 'BAD': 'quarantined', 'MSFT': 'ok'}
    assert list(data.fresh) == ['AAPL', 'MSFT']
    assert store.prices('BAD').empty and store.price_range('BAD') is None          # no bad bar reached the store
    assert list(quarantined(store)) == ['BAD']
    alert = store.alerts().query("source == 'data.quarantine'")
    assert len(alert) == 1 and alert.severity.iloc[0] == 'error' and 'twb data release BAD' in alert.message.iloc[0]
    # the day goes on: features of the good tickers build and persist (today 1e308 made rolling_std_5 infinite)
    feats = TimeSeriesFeatureBuilder().build_many(data.fresh)
    TimeSeriesFeatureBuilder().persist(store, feats[feats.index.get_level_values('date') == data.session])
    # and the next day too: the quarantine holds, no source is asked for BAD, no new alert
    clock.set('2018-02-09 12:00')
    again = mgr.load(['AAPL', 'BAD', 'MSFT'], end='2018-02-08', progress=False)
    assert again.tickers('quarantined') == ['BAD'] and len(store.alerts().query("source == 'data.quarantine'")) == 1


def test_quarantine_over_http_asks_the_source_once_and_release_refetches(store, clock):
    bad = poisoned('KO', '37x spike')
    with VendorServer(bars=lambda s: bad if s == 'BAD' else BUNDLED.history(s) if s in BUNDLED.tickers()
                      else None) as srv, \
            httpx.Client(timeout=2) as client:
        y = YFinanceSource(srv.base_url('yahoo'), client, retries=0, backoff_s=0)
        mgr = DataSourceManager([y], store, clock=clock, default_start='2017-01-03')
        assert mgr.load(['BAD', 'PG'], progress=False).tickers('quarantined') == ['BAD']
        n = len(srv.requests())
        assert mgr.load(['BAD'], progress=False).tickers('quarantined') == ['BAD'] and len(srv.requests()) == n
        assert release_quarantine(store, 'BAD', by='test') and not release_quarantine(store, 'BAD')
        assert mgr.load(['BAD'], progress=False).tickers('quarantined') == ['BAD'] and len(srv.requests()) == n + 1
    q = quarantined(store)['BAD']
    assert q.rules == ('spike',) and '2017-11-01' in q.reason


def test_real_splits_are_handled_as_before_not_quarantined(tmp_path, store, clock):
    """Raw AAPL with its three unadjusted splits: rejected by the split rule, so the next source
    serves; or repaired by policy."""
    folder = tmp_path / 'csv'; folder.mkdir()
    (folder / 'AAPL.csv').write_bytes((FIX / 'raw_unadjusted_AAPL.csv').read_bytes())
    mgr = DataSourceManager([CsvSource(folder), BundledSource()], store, clock=clock, default_start='2014-01-02')
    data = mgr.load(['AAPL'], end='2015-12-31', progress=False)
    assert data.tickers('ok') == ['AAPL'] and mgr.served[-1].source == 'bundled'
    assert mgr.served[-1].failovers[0].error == 'QualityError' and 'split_jump' in mgr.served[-1].failovers[0].message
    assert not quarantined(store)
    from trading_workbench.data.quality import QualityPolicy
    s2 = Store(f'sqlite:///{tmp_path}/wb2.db', clock=clock)
    repaired = DataSourceManager([CsvSource(folder)], s2, QualityPolicy().with_actions(split_jump='repair'),
                                 clock=clock,
                                 default_start='2014-01-02').load(['AAPL'], end='2015-12-31', progress=False)
    assert repaired.tickers('ok') == ['AAPL'] and not quarantined(s2)
    # back-adjusted for 7:1
    assert repaired.bars['AAPL'].close.loc['2014-06-06'] == pytest.approx(645.57 / 7, rel=1e-3)
    s2.close()


def test_a_session_after_the_data_ends_is_stale_and_an_unknown_ticker_is_missing(store):
    later = FixedClock('2018-03-02 12:00')
    mgr = DataSourceManager([BundledSource()], store, clock=later, default_start='2013-02-08')
    data = mgr.load(['AAPL', 'ZZZZ'], end='2018-03-01', progress=False)
    assert {s.ticker: s.status for s in data.statuses} == {'AAPL': 'stale', 'ZZZZ': 'missing'}
    assert data.stale == {'AAPL': pd.Timestamp('2018-02-07')} and data.fresh == {}
    assert 'no bar on 2018-03-01 for AAPL' in store.alerts().query("source == 'data.stale'").message.iloc[0]
    with pytest.raises(NoUsableData, match=r'AAPL stale \(last bar 2018-02-07\).*ZZZZ missing'):
        data.fresh_or_raise()
    rep = data.report()
    assert list(rep.columns) == ['ticker', 'status', 'last_bar', 'detail'] and list(rep.status) == ['stale', 'missing']


def test_daily_market_data_leaves_out_stale_tickers_and_raises_typed_when_nothing_is_left(store):
    cfg = Settings.load(ROOT / 'settings.ini', env={})
    mgr = DataSourceManager([BundledSource()], store, clock=FixedClock('2018-02-07 21:30'), default_start='2017-01-03')
    # SPY's bundled file ends 2017-12-29: on 2018-02-07 it is stale and must not be traded
    bars = market_data(mgr, plan_day(cfg, '2018-02-07', 'AAPL,SPY'))
    assert list(bars) == ['AAPL'] and bars['AAPL'].index[-1] == pd.Timestamp('2018-02-07')
    with pytest.raises(NoUsableData, match='ZZZZ missing'):
        market_data(mgr, plan_day(cfg, '2018-02-07', 'ZZZZ'))


def test_a_hanging_source_costs_its_budget_once_per_run(store, clock):
    """Yahoo hangs: the first ticker fails over after at most the budget, the others skip Yahoo;
    the failover time is recorded."""
    with VendorServer(hang_s=3, alpha_vantage_premium=True) as srv, httpx.Client(timeout=10) as client:
        y = YFinanceSource(srv.base_url('yahoo'), client, retries=3, backoff_s=0, budget_s=0.5)
        av = AlphaVantageSource(srv.base_url('alphavantage'), client, Secret('av-test-key-123'), premium=True,
                                retries=0, backoff_s=0)
        mgr = DataSourceManager([y, av], store, clock=clock, default_start='2017-01-03')
        srv.inject('yahoo', 'hang')                                      # a request it would answer after 3 s
        data = mgr.load(['KO', 'PG', 'IBM'], progress=False)
        assert data.tickers('ok') == ['KO', 'PG', 'IBM']
        assert len(srv.requests('yahoo')) == 1                                       # asked once, cut at the budget
        first, rest = mgr.served[0], mgr.served[1:]
        assert first.source == 'alpha_vantage' and first.failovers[0].error == 'SourceUnavailable'
        assert 'budget' in first.failovers[0].message and first.failover_seconds > 0
        assert all(s.failovers[0].error == 'SourceDown' for s in rest)
        assert 'source yfinance skipped' in store.alerts().query("source == 'data.yfinance'").message.iloc[0]
        # back: the recovery probe clears it
        assert mgr.test_data_source('yfinance') is True and 'yfinance' not in mgr.down


def test_an_auth_error_is_not_retried_for_every_ticker(store, clock):
    with VendorServer() as srv, httpx.Client(timeout=2) as client:
        av = AlphaVantageSource(srv.base_url('alphavantage'), client, Secret('av-test-key-123'), retries=3, backoff_s=0)
        mgr = DataSourceManager([av, BundledSource()], store, clock=clock, default_start='2017-01-03')
        srv.inject('alphavantage', 'demo_key', 'demo_key', 'demo_key')
        data = mgr.load(['KO', 'PG', 'IBM'], progress=False)
        assert data.tickers('ok') == ['KO', 'PG', 'IBM'] and len(srv.requests('alphavantage')) == 1
        assert 'TWB_ALPHA_VANTAGE_API_KEY' in store.alerts().query("source == 'data.alpha_vantage'").message.iloc[0]


def test_twb_run_daily_with_an_unknown_ticker_is_a_clear_typed_failure(tmp_path):
    (tmp_path / 'settings.ini').write_text((ROOT / 'settings.ini').read_text())
    env = {k: v for k, v in os.environ.items() if not k.startswith('TWB_')}
    # no network here: the point is the outcome, not the failover
    env['TWB_DATA_SOURCES'] = 'bundled'
    twb = str(Path(sys.executable).parent / 'twb')
    r = subprocess.run([twb, '--settings', str(tmp_path / 'settings.ini'), 'run', 'daily', '--date', '2018-02-07',
                        '--tickers', 'ZZZZ',
                        '--quiet'], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    assert r.returncode == 1
    assert 'NoUsableData' in r.stderr and 'ZZZZ missing' in r.stderr and 'KeyError' not in r.stderr


def test_daily_incremental_fetch_catches_a_spike_on_the_new_bar(tmp_path, store):
    "A daily run fetches one new bar: a 37x bar is judged against the stored ones before it, and never stored."
    folder = tmp_path / 'csv'; folder.mkdir()
    ko = BUNDLED.history('KO').astype('float64')
    ko[:'2018-02-06'].to_csv(folder / 'KO.csv')
    clock = FixedClock('2018-02-06 23:00')
    mgr = DataSourceManager([CsvSource(folder)], store, clock=clock, default_start='2017-01-03')
    assert mgr.load(['KO'], progress=False).tickers('ok') == ['KO']
    bad = ko.copy(); bad.loc['2018-02-07', OHLC] *= 37
    bad.to_csv(folder / 'KO.csv')
    clock.set('2018-02-07 23:00')
    data = mgr.load(['KO'], progress=False)
    assert data.tickers('quarantined') == ['KO'] and quarantined(store)['KO'].rules == ('spike',)
    assert store.prices('KO').index[-1] == pd.Timestamp('2018-02-06')          # the 37x bar never reached the store


def test_a_newest_bar_that_reverts_next_day_is_caught_then_and_release_refetches(tmp_path, store):
    """A -70% newest bar cannot be judged until the next bar; when it reverts, the ticker is quarantined; release
    refetches it all."""
    folder = tmp_path / 'csv'; folder.mkdir()
    ko = BUNDLED.history('KO').astype('float64')
    bad = ko.copy(); bad.loc['2018-02-06', OHLC] *= 0.3
    bad[:'2018-02-06'].to_csv(folder / 'KO.csv')
    clock = FixedClock('2018-02-06 23:00')
    mgr = DataSourceManager([CsvSource(folder)], store, clock=clock, default_start='2017-01-03')
    # a real crash looks the same, today
    assert mgr.load(['KO'], progress=False).tickers('ok') == ['KO']
    bad.to_csv(folder / 'KO.csv')
    clock.set('2018-02-07 23:00')
    # the way back shows it was a glitch
    assert mgr.load(['KO'], progress=False).tickers('quarantined') == ['KO']
    ko.to_csv(folder / 'KO.csv')                                                      # the vendor corrects its file
    assert release_quarantine(store, 'KO', by='test')
    data = mgr.load(['KO'], progress=False)
    assert data.tickers('ok') == ['KO'] and store.prices('KO').loc['2018-02-06', 'close'] == ko.loc['2018-02-06',
                                                                                                    'close']
