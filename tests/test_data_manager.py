"""DataSourceManager: failover (primary down, primary sending bad data, all down), the incremental cache, seams,
the universe loader and the primary switch, with vendor sources on the local vendor HTTP server."""
from pathlib import Path

import httpx
import pandas as pd
import pytest

from vendor_http_server import VendorServer
from trading_workbench.core.clock import FixedClock
from trading_workbench.core.config import Secret, Settings
from trading_workbench.data.manager import AllSourcesFailed, DataSourceManager, HistoryError
from trading_workbench.data.sources import AlphaVantageSource, BundledSource, CsvSource, FinnhubSource, YFinanceSource

ROOT = Path(__file__).resolve().parents[1]
AV, FH = 'av-test-key-123', 'fh-test-key-456'
BUNDLED = BundledSource()


@pytest.fixture
def server():
    with VendorServer(alpha_vantage_key=AV, finnhub_key=FH, alpha_vantage_premium=True) as srv:
        yield srv


@pytest.fixture
def client():
    with httpx.Client(timeout=2) as c:
        yield c


@pytest.fixture
def clock():
    return FixedClock('2018-02-08 23:00')


def vendor_sources(server, client, clock):
    kw = dict(retries=1, backoff_s=0, max_wait_s=0, clock=clock)
    return [YFinanceSource(server.base_url('yahoo'), client, **kw),
            AlphaVantageSource(server.base_url('alphavantage'), client, Secret(AV), premium=True, **kw),
            FinnhubSource(server.base_url('finnhub'), client, Secret(FH), **kw)]


def test_primary_down_fails_over(server, client, clock, store):
    mgr = DataSourceManager(vendor_sources(server, client, clock), store, clock=clock)
    server.inject('yahoo', 'server_error', 'server_error')
    bars = mgr.history('IBM', '2017-01-03', '2017-12-29')
    pd.testing.assert_frame_equal(bars, BUNDLED.history('IBM', '2017-01-03', '2017-12-29'), check_freq=False, rtol=1e-6)
    assert mgr.served[-1].source == 'alpha_vantage'
    assert [f.source for f in mgr.served[-1].failovers] == ['yfinance']
    assert set(store.price_sources('IBM').source) == {'alpha_vantage'}
    assert 'served by alpha_vantage after failover' in store.alerts().message.iloc[0]


def test_primary_bad_data_fails_over(server, client, clock, store):
    mgr = DataSourceManager(vendor_sources(server, client, clock), store, clock=clock)
    server.inject('yahoo', 'corrupt')
    mgr.history('IBM', '2017-01-03', '2017-12-29')
    assert mgr.served[-1].source == 'alpha_vantage'
    f = mgr.served[-1].failovers[0]
    assert f.source == 'yfinance' and f.error == 'QualityError' and 'nonpositive_prices' in f.message
    assert (store.prices('IBM').close > 0).all()


def test_all_down_names_every_failure(server, client, clock, store):
    mgr = DataSourceManager([CsvSource(ROOT / 'no-such-dir')] + vendor_sources(server, client, clock), store,
                            clock=clock)
    server.inject('yahoo', 'rate_limit', 'rate_limit')
    server.inject('alphavantage', 'premium')
    server.inject('finnhub', 'disconnect', 'disconnect')
    with pytest.raises(AllSourcesFailed) as e:
        mgr.history('IBM', '2017-01-03', '2017-12-29')
    assert [(f.source, f.error) for f in e.value.failures] == [
        ('csv', 'SourceUnavailable'), ('yfinance', 'RateLimited'), ('alpha_vantage', 'PremiumOnly'),
        ('finnhub', 'SourceUnavailable')]
    msg = str(e.value)
    for part in ('csv:', 'does not exist', 'yfinance:', 'HTTP 429', 'alpha_vantage:', 'premium', 'finnhub:',
                 'network error'):
        assert part in msg
    assert store.price_range('IBM') is None
    assert store.get_control('data.coverage.IBM') is None
    assert store.alerts().severity.iloc[0] == 'error'


def test_cache_rerun_hits_no_source_and_increments(server, client, clock, store):
    mgr = DataSourceManager(vendor_sources(server, client, clock), store, clock=clock)
    first = mgr.history('KO', '2016-01-04', '2016-12-30')
    n = len(server.requests())
    again = mgr.history('KO', '2016-01-04', '2016-12-30')
    assert len(server.requests()) == n
    pd.testing.assert_frame_equal(first, again)
    # a narrower window is inside the cache too
    assert len(mgr.history('KO', '2016-03-01', '2016-03-31')) == 22 and len(server.requests()) == n
    # a longer window fetches only the missing sessions
    mgr.history('KO', '2016-01-04', '2017-01-31')
    reqs = server.requests('yahoo')[n:]
    assert len(reqs) == 1
    assert pd.Timestamp(int(reqs[0].query['period1']), unit='s') == pd.Timestamp('2016-12-31')
    assert mgr.served[-1].rows == 20 and mgr.served[-1].start == pd.Timestamp('2017-01-03')
    # and earlier history only the head
    mgr.history('KO', '2015-06-01', '2017-01-31')
    assert str(mgr.served[-1].end.date()) == '2015-12-31'


def test_unclosed_session_is_not_asked(server, client, store):
    clock = FixedClock('2017-03-01 18:00')  # 13:00 in New York: today's session is still open
    mgr = DataSourceManager(vendor_sources(server, client, clock), store, clock=clock)
    bars = mgr.history('KO', '2017-02-01', '2017-03-01')
    assert bars.index[-1] == pd.Timestamp('2017-02-28')
    clock.set('2017-03-01 21:30')
    assert mgr.history('KO', '2017-02-01', '2017-03-01').index[-1] == pd.Timestamp('2017-03-01')


def test_listing_date_not_asked_again(clock, store):
    "GOOG starts 2014-03-27; the years before are asked once, not on every run."
    mgr = DataSourceManager([BundledSource()], store, clock=clock)
    assert mgr.history('GOOG', '2013-02-08', '2018-02-07').index[0] == pd.Timestamp('2014-03-27')
    n = len(mgr.served)
    mgr.history('GOOG', '2013-02-08', '2018-02-07')
    assert len(mgr.served) == n


def test_partial_source_is_completed_by_the_next(server, client, clock, store, tmp_path):
    short = tmp_path / 'csv'; short.mkdir()
    BUNDLED.history('PEP')[:'2016-06-30'].to_csv(short / 'PEP.csv')
    mgr = DataSourceManager([CsvSource(short)] + vendor_sources(server, client, clock), store, clock=clock)
    bars = mgr.history('PEP', '2016-01-04', '2016-12-30')
    pd.testing.assert_frame_equal(bars, BUNDLED.history('PEP', '2016-01-04', '2016-12-30'), check_freq=False, rtol=1e-6)
    assert [(s.source, str(s.end.date())) for s in mgr.served] == [('csv', '2016-06-30'), ('yfinance', '2016-12-30')]


def test_seam_split_is_rejected(server, client, clock, store, tmp_path):
    "A source whose history was re-adjusted for a later split (4x lower) cannot be stitched onto stored bars."
    d = tmp_path / 'csv'; d.mkdir()
    BUNDLED.history('PEP')[:'2016-06-30'].to_csv(d / 'PEP.csv')
    mgr = DataSourceManager([CsvSource(d), BundledSource()], store, clock=clock)
    mgr.history('PEP', '2016-01-04', '2016-06-30')
    scaled = BUNDLED.history('PEP') / 4
    scaled['volume'] *= 16
    scaled.to_csv(d / 'PEP.csv')
    mgr2 = DataSourceManager([CsvSource(d), BundledSource()], store, clock=clock)
    mgr2.history('PEP', '2016-01-04', '2016-12-30')
    assert mgr2.served[-1].source == 'bundled'
    f = mgr2.served[-1].failovers[0]
    assert f.source == 'csv' and 'split' in f.message


def test_history_many_from_settings_and_primary_switch(store, clock, server, client):
    cfg = Settings.load(ROOT / 'settings.ini', env={})
    mgr = DataSourceManager.from_settings(cfg, store, clock=clock,
                                          sources=[BundledSource()] + vendor_sources(server, client, clock))
    out = mgr.history_many(cfg.universe.tickers, progress=False)
    assert list(out) == list(cfg.universe.tickers) and all(len(b) >= 1257 for b in out.values())
    assert server.requests() == []  # the embedded default serves the demo universe without the network
    with pytest.raises(HistoryError) as e:
        mgr.history_many(['AAPL', 'NOPE'], progress=False)
    assert list(e.value.errors) == ['NOPE'] and list(e.value.results) == ['AAPL']
    assert list(mgr.history_many(['AAPL', 'NOPE'], on_error='skip', progress=False)) == ['AAPL']
    assert mgr.test_data_source('finnhub')
    server.inject('finnhub', 'rate_limit')
    assert not mgr.test_data_source('finnhub')
    mgr.set_primary_source('alpha_vantage')
    assert DataSourceManager([BundledSource()] + vendor_sources(server, client, clock), store,
                             clock=clock).primary == 'alpha_vantage'
    with pytest.raises(KeyError, match='unknown data source'):
        mgr.set_primary_source('bloomberg')
