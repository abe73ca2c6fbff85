"""`twb serve` as a real process: a killed child is restarted, the probes answer over HTTP, SIGTERM during a daily run
waits for the run (no order left half-sent) and stops cleanly."""
import os, re, signal, subprocess, sys, time

import httpx

from trading_workbench.core.types import OrderState
from trading_workbench.store.db import Store

from conftest import ROOT

CLI = [sys.executable, '-c', 'import sys; from trading_workbench.cli import main; sys.exit(main(sys.argv[1:]))',
       '--settings', str(ROOT / 'settings.ini')]

def start(tmp_path, *args, **env_extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith('TWB_')}
    env.update(TWB_STORE_URL=f"sqlite:///{tmp_path / 'w.db'}", TWB_DATA_SOURCES='bundled', TWB_FLAGS_ENABLE_LLM='false',
               **env_extra)
    p = subprocess.Popen([*CLI, 'serve', '--port', '0', '--interval', '0.2', '--no-schedule', *args], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = p.stdout.readline()
    m = re.search(r'http://127\.0\.0\.1:(\d+)/healthz', line)
    assert m, line
    return p, f'http://127.0.0.1:{m.group(1)}'

def until(fn, timeout=60.0):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        v = fn()
        if v: return v
        time.sleep(0.1)
    raise AssertionError('condition not met in time')

def stop(p):
    p.send_signal(signal.SIGTERM)
    out = p.communicate(timeout=120)[0]
    return p.returncode, out

def test_killed_child_restarted_and_probes(tmp_path):
    p, base = start(tmp_path, '--children', 'risk_monitor', '--risk-interval', '0.5',
                    '--child', f'sleeper={sys.executable} -c "import time; time.sleep(600)"')
    try:
        first = until(lambda: (h := httpx.get(base + '/healthz').json())['children']['sleeper']['pid'] and h)
        pid = first['children']['sleeper']['pid']
        os.kill(pid, signal.SIGKILL)
        h = until(lambda: (h := httpx.get(base + '/healthz').json())['children']['sleeper']['restarts'] == 1
                  and h['children']['sleeper']['running'] and h)
        assert h['children']['sleeper']['pid'] != pid and h['alive']
        r = until(lambda: (r := httpx.get(base + '/readyz')).json()['checks'].get('risk_monitor', {}).get('ok') and r)
        checks = r.json()['checks']
        assert {'loop', 'risk_monitor', 'risk_state', 'data_age', 'broker'} <= set(checks)
        assert checks['broker']['ok'] and checks['risk_state']['detail'] == 'ACTIVE'
        # no bars in a fresh store: not ready, and the probe says why
        assert r.status_code == 503 and not checks['data_age']['ok'] and checks['data_age']['detail'] == 'no bars'
        m = httpx.get(base + '/metrics').text
        assert 'twb_child_restarts_total{child="sleeper"} 1.0' in m and 'twb_ready{check="data_age"} 0.0' in m
        assert httpx.get(base + '/nope').status_code == 404
    finally:
        rc, out = stop(p)
    assert rc == 0 and 'stopped cleanly' in out

def test_sigterm_during_a_daily_run(tmp_path):
    p, base = start(tmp_path, '--children', '', '--run-date', '2018-02-07', TWB_UNIVERSE_TICKERS='AAPL,MSFT,KO')
    store = Store(f"sqlite:///{tmp_path / 'w.db'}")
    try:
        until(lambda: len(store.runs('daily')) > 0, timeout=120)    # the run has started
        rc, out = stop(p)                                           # SIGTERM mid-run
        assert rc == 0 and 'stopped cleanly' in out
        runs = store.runs('daily')
        assert list(runs.status) == ['ok'], runs[['run_id', 'status']]
        orders = store.orders()
        assert orders and all(OrderState(o['state']).is_terminal or o['state'] == 'submitted' for o in orders)
        assert not [o for o in orders if o['state'] in ('new', 'pending_submit', 'unknown')]
        assert store.heartbeats().set_index('component').status['supervisor'] == 'stopped'
    finally:
        if p.poll() is None: p.kill()
        store.close()
