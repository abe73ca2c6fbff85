"""PostgreSQL end to end: a daily run and the risk monitor against the PostgreSQL server CI starts (TWB_TEST_PG_URL)."""
from trading_workbench.cli import main
from trading_workbench.store.db import Store

from conftest import ROOT

def test_daily_run_and_risk_monitor_on_postgresql(fresh_pg_url, monkeypatch, capsys):
    for k, v in dict(TWB_STORE_URL=fresh_pg_url, TWB_DATA_SOURCES='bundled',
                     TWB_FLAGS_ENABLE_LLM='false').items(): monkeypatch.setenv(k, v)
    ini = str(ROOT / 'settings.ini')
    assert main(['--settings', ini, 'run', 'daily', '--date', '2018-02-07', '--tickers', 'AAPL,MSFT,KO',
                 '--quiet']) == 0
    assert main(['--settings', ini, 'risk', 'watch', '--interval', '0', '--iterations', '2']) == 0
    out = capsys.readouterr().out
    assert 'ACTIVE equity' in out
    store = Store(fresh_pg_url)
    try:
        assert store.dialect == 'postgresql'
        runs = store.runs('daily')
        assert list(runs.status) == ['ok'] and len(store.orders()) > 0
        hb = store.heartbeats().set_index('component')
        assert hb.status['risk_monitor'] in ('ok', 'degraded')
    finally: store.close()
