"""Vendor sources against the local vendor HTTP server (real wire formats, real bars,
injected faults), and CSV layouts."""
import gzip, logging, shutil
from pathlib import Path

import httpx
import pandas as pd
import pytest

from vendor_http_server import VendorServer
from trading_workbench.core.config import Secret, Settings
from trading_workbench.data.sources import (AlphaVantageSource, AuthError, BundledSource, CsvSource, FinnhubSource,
                                            MissingKeyError, NoDataError, PremiumOnly, QuotaExceeded, RateLimited,
                                            SourceUnavailable, VendorError, YFinanceSource, sources_from_settings)

ROOT = Path(__file__).resolve().parents[1]
FIX = Path(__file__).resolve().parent / 'fixtures' / 'prices'
AV_KEY, FH_KEY = 'av-secret-K3Y-77aa', 'fh-secret-K3Y-99bb'


@pytest.fixture
def server():
    with VendorServer(alpha_vantage_key=AV_KEY, finnhub_key=FH_KEY, hang_s=3.0, alpha_vantage_premium=True) as srv:
        yield srv


@pytest.fixture
def client():
    # under a hang fault the server answers after 3 s: 1.5 s times out surely, and leaves a loaded machine time to
    # answer
    with httpx.Client(timeout=1.5) as c:
        yield c


def vendors(server, client, retries=3):
    kw = dict(retries=retries, backoff_s=0, max_wait_s=0)
    return {'yahoo': YFinanceSource(server.base_url('yahoo'), client, **kw),
            'alphavantage': AlphaVantageSource(server.base_url('alphavantage'), client, Secret(AV_KEY), premium=True,
                                               **kw),
            'finnhub': FinnhubSource(server.base_url('finnhub'), client, Secret(FH_KEY), **kw)}


@pytest.mark.parametrize('vendor', ['yahoo', 'alphavantage', 'finnhub'])
def test_vendor_serves_real_bars(server, client, vendor):
    src = vendors(server, client)[vendor]
    got = src.history('JPM', '2016-03-01', '2016-03-31')
    ref = BundledSource().history('JPM', '2016-03-01', '2016-03-31')
    pd.testing.assert_frame_equal(got, ref, check_freq=False, rtol=1e-6)


@pytest.mark.parametrize('vendor', ['yahoo', 'alphavantage', 'finnhub'])
@pytest.mark.parametrize('fault', ['server_error', 'disconnect', 'garbage'])
def test_transient_fault_is_retried(server, client, vendor, fault):
    src = vendors(server, client)[vendor]
    server.inject(vendor, fault)
    assert len(src.history('KO', '2017-01-03', '2017-01-31')) == 20
    assert len(server.requests(vendor)) == 2


@pytest.mark.parametrize('vendor', ['yahoo', 'alphavantage', 'finnhub'])
def test_rate_limit_exhausts_retries(server, client, vendor):
    src = vendors(server, client, retries=2)[vendor]
    server.inject(vendor, 'rate_limit', 'rate_limit', 'rate_limit')
    with pytest.raises(RateLimited):
        src.history('KO', '2017-01-03', '2017-01-31')
    assert len(server.requests(vendor)) == 3


@pytest.mark.parametrize('vendor', ['yahoo', 'alphavantage', 'finnhub'])
def test_hang_times_out(server, client, vendor):
    src = vendors(server, client, retries=0)[vendor]
    server.inject(vendor, 'hang')
    with pytest.raises(SourceUnavailable, match='timed out'):
        src.history('KO', '2017-01-03', '2017-01-31')


def test_alpha_vantage_information_and_premium(server, client):
    av = vendors(server, client, retries=0)['alphavantage']
    server.inject('alphavantage', 'information')
    with pytest.raises(QuotaExceeded, match='25 requests per day'):
        av.history('KO')
    server.inject('alphavantage', 'premium')
    with pytest.raises(PremiumOnly, match='premium only'):
        av.history('KO')


def test_vendor_errors_are_not_retried(server, client):
    bad_av = AlphaVantageSource(server.base_url('alphavantage'), client, Secret('wrong-key-000'), retries=3,
                                backoff_s=0, premium=True)
    with pytest.raises(AuthError, match='key rejected'):
        bad_av.history('KO')
    bad_fh = FinnhubSource(server.base_url('finnhub'), client, Secret('wrong-key-111'), retries=3, backoff_s=0)
    with pytest.raises(AuthError, match='401'):
        bad_fh.history('KO', '2017-01-03', '2017-01-31')
    assert len(server.requests()) == 2
    fh = vendors(server, client)['finnhub']
    server.inject('finnhub', 'forbidden')
    with pytest.raises(PremiumOnly, match='403') as e:
        fh.history('KO', '2017-01-03', '2017-01-31')
    assert 'plan' in e.value.action and isinstance(e.value, VendorError)


def test_unknown_symbols_are_no_data(server, client):
    v = vendors(server, client)
    with pytest.raises(NoDataError, match='delisted'):
        v['yahoo'].history('XXXX')
    with pytest.raises(NoDataError, match='Invalid API call'):
        v['alphavantage'].history('XXXX')
    with pytest.raises(NoDataError, match='no_data'):
        v['finnhub'].history('XXXX', '2017-01-03', '2017-01-31')
    with pytest.raises(NoDataError):
        v['yahoo'].history('KO', '2030-01-01', '2030-02-01')


def test_missing_keys_fail_before_any_request(server, client):
    for src in (AlphaVantageSource(server.base_url('alphavantage'), client, None),
                FinnhubSource(server.base_url('finnhub'), client, None)):
        with pytest.raises(MissingKeyError, match='TWB_'):
            src.history('KO')
    assert server.requests() == []


def test_keys_never_in_logs_or_errors(server, client, caplog):
    "The key in Alpha Vantage's query string and Finnhub's header never shows in a log line or an error message."
    caplog.set_level(logging.DEBUG)
    v = vendors(server, client, retries=1)
    messages = []
    server.inject('alphavantage', 'server_error', 'server_error', 'rate_limit', 'rate_limit', 'garbage', 'garbage')
    server.inject('finnhub', 'server_error', 'server_error', 'rate_limit', 'rate_limit', 'hang', 'hang')
    for name in ('alphavantage', 'finnhub'):
        for _ in range(3):
            with pytest.raises(SourceUnavailable) as e:
                v[name].history('KO', '2017-01-03', '2017-01-31')
            messages.append(str(e.value))
    v['alphavantage'].history('KO', '2017-01-03', '2017-01-31')  # a success logs the request URL through httpx
    text = '\n'.join(messages) + '\n'.join(r.getMessage() for r in caplog.records)
    assert any('apikey=***' in r.getMessage() for r in caplog.records if r.name == 'httpx')
    assert AV_KEY not in text and FH_KEY not in text
    fh_reqs = server.requests('finnhub')
    assert fh_reqs and all('token' not in r.query for r in fh_reqs) and all(r.headers.get('X-Finnhub-Token') == FH_KEY
                                                                            for r in fh_reqs)


def test_health(server):
    # no fault here needs a short timeout: a loaded machine must not fail the ok probe
    with httpx.Client(timeout=10) as client:
        _check_health(server, client)

def _check_health(server, client):
    v = vendors(server, client)
    assert all(s.health().ok for s in v.values())
    server.inject('yahoo', 'server_error')
    h = v['yahoo'].health()
    assert not h.ok and 'HTTP 503' in h.detail
    assert len(server.requests('yahoo')) == 2  # one for the ok probe, one for the failed probe: no retries


def test_sources_from_settings_point_at_configured_urls(server):
    env = {'TWB_DATA_YFINANCE_BASE_URL': server.base_url('yahoo'),
           'TWB_DATA_ALPHA_VANTAGE_BASE_URL': server.base_url('alphavantage'),
           'TWB_DATA_FINNHUB_BASE_URL': server.base_url('finnhub'), 'TWB_ALPHA_VANTAGE_API_KEY': AV_KEY,
           'TWB_FINNHUB_API_KEY': FH_KEY, 'TWB_DATA_SOURCES': 'yfinance, alpha_vantage, finnhub'}
    cfg = Settings.load(ROOT / 'settings.ini', env={**env, 'TWB_DATA_ALPHA_VANTAGE_PREMIUM': 'true'})
    srcs = sources_from_settings(cfg, backoff_s=0)
    assert [s.name for s in srcs] == ['yfinance', 'alpha_vantage', 'finnhub']
    for s in srcs:
        assert len(s.history('PG', '2017-05-01', '2017-05-05')) == 5
    assert {r.vendor for r in server.requests()} == {'yahoo', 'alphavantage', 'finnhub'}


def test_csv_layouts(tmp_path):
    shutil.copy(FIX / 'raw_unadjusted_AAPL.csv', tmp_path / 'AAPL.csv')              # newest first, Adj Close last
    shutil.copy(FIX / 'mplfinance_SPY.csv', tmp_path / 'SPY.csv')                     # Yahoo layout
    shutil.copy(FIX / 'sp500_5y_DHR.csv', tmp_path / 'DHR_data.csv')                  # Kaggle name and layout
    (tmp_path / 'KO.csv.gz').write_bytes(gzip.compress((ROOT / 'trading_workbench/data/prices/KO.csv').read_bytes()))
    csv = CsvSource(tmp_path)
    a = csv.history('AAPL')
    assert a.index.is_monotonic_increasing and a.index[-1] == pd.Timestamp('2016-01-04') and len(a) == 4026
    assert list(a.columns) == ['open', 'high', 'low', 'close', 'volume']
    assert csv.history('SPY', '2017-12-29').close.iloc[0] == 266.859985
    adj = CsvSource(tmp_path, adjust=True).history('SPY', '2017-12-29')
    assert adj.close.iloc[0] == pytest.approx(266.859985)  # adj close equals close on the last day
    assert len(csv.history('DHR')) == 1243 and len(csv.history('KO')) == 1259
    assert csv.health().ok and not CsvSource(tmp_path / 'nope').health().ok
    (tmp_path / 'BAD.csv').write_text('foo,bar\n1,2\n')
    with pytest.raises(SourceUnavailable, match='no date column'):
        csv.history('BAD')


# --- what each vendor refusal means (bodies the real services send; see tests/vendor_http_server.py) ---

@pytest.mark.parametrize('fault, error, requests, words', [
    # a key problem: retrying cannot help, the operator must act
    ('demo_key', AuthError, 1, 'TWB_ALPHA_VANTAGE_API_KEY'),
    ('invalid_key', AuthError, 1, 'TWB_ALPHA_VANTAGE_API_KEY'),
    ('information', QuotaExceeded, 1, 'quota to reset'),        # the daily quota: not retried today
    ('premium', PremiumOnly, 1, 'premium key'),
])
def test_alpha_vantage_refusals_are_classified_and_not_retried(server, client, fault, error, requests, words):
    av = vendors(server, client, retries=3)['alphavantage']
    server.inject('alphavantage', fault)
    with pytest.raises(error) as e:
        av.history('KO', '2017-01-03', '2017-01-31')
    assert not isinstance(e.value, SourceUnavailable) and words in e.value.action and 'To fix:' in str(e.value)
    assert len(server.requests('alphavantage')) == requests


def test_alpha_vantage_burst_limit_is_retried(server, client):
    av = vendors(server, client, retries=3)['alphavantage']
    server.inject('alphavantage', 'burst')
    assert len(av.history('KO', '2017-01-03', '2017-01-31')) == 20
    assert len(server.requests('alphavantage')) == 2


def test_free_alpha_vantage_key_asks_compact_and_says_when_that_is_not_enough(client):
    with VendorServer(alpha_vantage_key=AV_KEY) as free:                      # a free key, as most operators have
        av = AlphaVantageSource(free.base_url('alphavantage'), client, Secret(AV_KEY), retries=3, backoff_s=0)
        recent = av.history('KO', '2018-01-02', '2018-02-07')
        assert len(recent) == 26 and free.requests()[-1].query['outputsize'] == 'compact'
        with pytest.raises(PremiumOnly, match='compact output starts'):     # 2016 is older than the last 100 sessions
            av.history('KO', '2016-01-04', '2016-02-01')
        full = AlphaVantageSource(free.base_url('alphavantage'), client, Secret(AV_KEY), retries=3, backoff_s=0,
                                  premium=True)
        n = len(free.requests())
        with pytest.raises(PremiumOnly, match='outputsize=full parameter value is a premium feature'):
            full.history('KO', '2016-01-04', '2016-02-01')
        assert len(free.requests()) == n + 1


def test_yahoo_invalid_crumb_is_an_auth_error_with_its_text(server, client):
    y = vendors(server, client, retries=3)['yahoo']
    server.inject('yahoo', 'invalid_crumb')
    with pytest.raises(AuthError, match='Invalid Crumb') as e:
        y.history('KO', '2017-01-03', '2017-01-31')
    assert 'HTTP 401' in str(e.value) and 'cookie and crumb' in e.value.action
    assert len(server.requests('yahoo')) == 1


def test_time_budget_caps_a_hanging_source(server):
    """A source that hangs longer than its budget gives up within the budget (one cut-short
    request), not after every retry."""
    with httpx.Client(timeout=5) as slow_client:
        y = YFinanceSource(server.base_url('yahoo'), slow_client, retries=3, backoff_s=0, budget_s=0.3)
        server.inject('yahoo', 'hang', 'hang', 'hang', 'hang')
        with pytest.raises(SourceUnavailable, match='budget'):
            y.history('KO', '2017-01-03', '2017-01-31')
        assert len(server.requests('yahoo')) == 1
