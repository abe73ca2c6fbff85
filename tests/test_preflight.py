"""`twb deploy --preflight` against the real protocol servers: vendors over HTTP, TWS over
its socket protocol, Ollama."""
import asyncio, json, subprocess, sys, threading

import pytest

from ollama_server import OllamaServer
from trading_workbench.testing.tws_server import TWSServer
from vendor_http_server import VendorServer
from trading_workbench.deploy.preflight import Status, run_preflight
from trading_workbench.store.db import Store

from conftest import ROOT

AV, FH = 'av-test-key-123', 'fh-test-key-456'

class Gateway:
    "The TWS test server on its own event-loop thread, as a gateway runs beside the workbench."
    def __init__(self, account='DU1234567'):
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, daemon=True).start()
        self.srv = TWSServer(account=account)
        self.port = asyncio.run_coroutine_threadsafe(self.srv.start(), self.loop).result(10)
    def close(self):
        asyncio.run_coroutine_threadsafe(self.srv.stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)

@pytest.fixture(scope='module')
def servers():
    gw = Gateway()
    with VendorServer(alpha_vantage_key=AV, finnhub_key=FH) as v, OllamaServer(models=['llama3.1:8b']) as o:
        yield gw, v, o
    gw.close()

def env_for(tmp_path, servers, **extra):
    gw, v, o = servers
    url = f"sqlite:///{tmp_path / 'w.db'}"
    Store(url).close()    # migrated to head
    (tmp_path / 'csv').mkdir(exist_ok=True)
    (tmp_path / 'csv' / 'AAPL.csv').write_text('date,open,high,low,close,volume\n')
    return {'TWB_STORE_URL': url, 'TWB_DATA_CSV_DIR': str(tmp_path / 'csv'),
            'TWB_DATA_YFINANCE_BASE_URL': v.base_url('yahoo'),
            'TWB_DATA_ALPHA_VANTAGE_BASE_URL': v.base_url('alphavantage'),
            'TWB_DATA_FINNHUB_BASE_URL': v.base_url('finnhub'), 'TWB_ALPHA_VANTAGE_API_KEY': AV,
            'TWB_FINNHUB_API_KEY': FH,
            'TWB_DATA_HTTP_RETRIES': '0', 'TWB_BROKER_KIND': 'ibkr', 'TWB_BROKER_PORT': str(gw.port),
            'TWB_LLM_HOST': o.url, **extra}

def run(env): return run_preflight(ROOT / 'settings.ini', env, ROOT / 'constraints.txt')

def by_name(rep): return {c.name: c for c in rep.checks}

def test_everything_live_passes(tmp_path, servers):
    rep = run(env_for(tmp_path, servers))
    print(rep.table())
    assert rep.ok, rep.table()
    c = by_name(rep)
    assert {'data: bundled', 'data: csv', 'data: yfinance', 'data: alpha_vantage', 'data: finnhub'} <= set(c)
    assert 'logged in (paper account DU***)' in c['broker'].detail and 'against the broker' in c['clock'].detail
    assert AV not in rep.to_json() and FH not in rep.table()

@pytest.mark.parametrize('extra,failing,needle', [
    (dict(TWB_ALPHA_VANTAGE_API_KEY='expired-key-1'), 'data: alpha_vantage', 'alpha_vantage'),
    (dict(TWB_FINNHUB_API_KEY=''), 'secrets', 'TWB_FINNHUB_API_KEY'),
    (dict(TWB_BROKER_MODE='live', TWB_LIVE_TRADING='I_UNDERSTAND', TWB_IB_ACCOUNT='DU1234567'), 'broker',
     'paper account but [broker] mode = live'),
    (dict(TWB_BROKER_PORT='1'), 'broker', 'is IB Gateway running'),
    (dict(TWB_IB_ACCOUNT='DU7654321'), 'broker', 'TWB_IB_ACCOUNT is not among'),
    (dict(TWB_LLM_MODEL='qwen2.5:7b'), 'llm', 'ollama pull qwen2.5:7b'),
    (dict(TWB_RISK_MAX_DRAWDOWN='0.1'), 'environment names', 'did you mean TWB_RISK_MAX_DRAWDOWN_PCT?'),
    (dict(TWB_UNIVERSE_START='notadate'), 'settings', 'a date YYYY-MM-DD'),
])
def test_each_failure_named(tmp_path, servers, extra, failing, needle):
    rep = run(env_for(tmp_path, servers, **extra))
    assert not rep.ok and failing in [c.name for c in rep.failed()], rep.table()
    assert needle in by_name(rep)[failing].detail

def test_store_behind_fails(tmp_path, servers):
    env = env_for(tmp_path, servers, TWB_STORE_URL=f"sqlite:///{tmp_path / 'new.db'}")
    assert [c.name for c in run(env).failed()] == ['migrations']

def test_cli_json_and_exit_code(tmp_path, servers):
    env = {k: v for k, v in __import__('os').environ.items() if not k.startswith('TWB_')}
    env.update(env_for(tmp_path, servers, TWB_LLM_MODEL='missing:1b'))
    r = subprocess.run([sys.executable, '-c',
                        'import sys; from trading_workbench.cli import main; sys.exit(main(sys.argv[1:]))',
                        '--settings', str(ROOT / 'settings.ini'), 'deploy', '--preflight', '--json'], env=env,
                        capture_output=True, text=True, timeout=120)
    out = json.loads(r.stdout)
    assert r.returncode == 1 and not out['ok'] and [c['name'] for c in out['checks']
                                                    if c['status'] == Status.FAIL.value] == ['llm']
