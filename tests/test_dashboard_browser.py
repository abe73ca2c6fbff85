"""The operators' dashboard in a real browser: `twb dashboard` (Voila) on a demo store, driven by
Playwright with Debian's chromium.

One server for the module (five preheated kernels): the page shows the store's numbers and the
supervisor's uptime, exports equal
what is drawn, a new fill appears within one refresh, the kill switch halts the next order, requests
without the token are refused,
a viewer cannot run code, and two then five viewers at once see every KPI while the backtest writes into the same
store, with no
lock error anywhere (memory per viewer is printed). It takes the screenshot the README shows (docs/dashboard.png)."""
from __future__ import annotations
import asyncio, http.client, json, math, os, re, shutil, socket, subprocess, sys, time, uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd
import psutil
import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout, sync_playwright
from tornado.websocket import websocket_connect

from datetime import datetime, timedelta, timezone

from trading_workbench.core.clock import FixedClock
from trading_workbench.core.config import Settings
from trading_workbench.core.types import Order
from trading_workbench.cli import _order_manager
from trading_workbench.deploy.serve import uptime
from trading_workbench.monitoring.dashboard import KPI_LABELS, load_snapshot, trading_kpis
from trading_workbench.store.db import Store, T
from trading_workbench.validation.backtest import backtest_store, run_backtest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get('TWB_CHROMIUM') or shutil.which('chromium') or '/usr/bin/chromium'
TOKEN = 'tok-' + uuid.uuid4().hex
REFRESH_S = 3
POOL = 5          # preheated kernels: as many as the most viewers at once below
pytestmark = pytest.mark.timeout(900)

def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0)); return s.getsockname()[1]

def get(port: int, path: str) -> tuple[int, str]:
    "One GET without following redirects: status and Location."
    c = http.client.HTTPConnection('127.0.0.1', port, timeout=30)
    c.request('GET', path); r = c.getresponse(); r.read()
    return r.status, r.getheader('Location') or ''

@pytest.fixture(scope='module')
def demo(tmp_path_factory):
    "A demo store (two months of three tickers through the backtest) and `twb dashboard` serving it with a token."
    d = tmp_path_factory.mktemp('dash')
    ini = re.sub(r'(?m)^url = sqlite:///runs/workbench.db$', f'url = sqlite:///{d}/workbench.db',
                 (ROOT / 'settings.ini').read_text())
    ini = re.sub(r'(?m)^pool_size = .*$', f'pool_size = {POOL}',
                 re.sub(r'(?m)^refresh_s = .*$', f'refresh_s = {REFRESH_S}', ini))
    (d / 'settings.ini').write_text(ini)
    settings = Settings.load(d / 'settings.ini')
    st = backtest_store(settings, 'dash-test', settings.store.url, start=pd.Timestamp('2017-10-02'))
    run_backtest(settings, st, '2017-10-02', '2017-12-29', tickers='AAPL,KO,XOM', account='PAPER', order_prefix='daily',
                 progress=False)
    # a supervisor beat in every minute of the last five days but the last hour
    now = datetime.now(timezone.utc).replace(second=0, microsecond=0)
    with st.engine.begin() as c:
        c.execute(T['service_beats'].insert(),
                  [dict(component='supervisor', minute=now - timedelta(minutes=m)) for m in range(60, 5 * 1440)])
    st.close()
    port, log = free_port(), open(d / 'server.log', 'w')
    proc = subprocess.Popen([str(Path(sys.executable).parent / 'twb'), '--settings', str(d / 'settings.ini'),
                             'dashboard', '--port', str(port)],
                            env=os.environ | dict(TWB_DASHBOARD_TOKEN=TOKEN), stdout=log, stderr=subprocess.STDOUT,
                            cwd=d)
    for _ in range(240):
        assert proc.poll() is None, (d / 'server.log').read_text()
        try:
            if get(port, '/login')[0] == 200: break
        except OSError: time.sleep(0.25)
    yield dict(dir=d, settings=settings, port=port, url=f'http://127.0.0.1:{port}/', proc=proc)
    proc.terminate()
    try: proc.wait(30)
    except subprocess.TimeoutExpired: proc.kill()
    log.close()

@pytest.fixture(scope='module')
def browser():
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM,
                              args=['--no-sandbox', '--disable-gpu', '--disable-background-networking'])
        yield b
        b.close()

def kpis(page) -> dict[str, float]:
    return {k: float(v) for k,
            v in page.eval_on_selector_all('[data-kpi]', 'els => els.map(e => [e.dataset.kpi, e.dataset.value])')}

def open_pages(browser, url: str, n: int = 1, server_log: Path | None = None) -> list:
    """`n` viewers navigate at once; each is returned when its KPIs and charts are drawn. A page that is not drawn in
    time fails with what it shows, what its console said and the server log's tail."""
    pages = [browser.new_page(viewport=dict(width=1400, height=1000), accept_downloads=True) for _ in range(n)]
    said = {id(p): [] for p in pages}
    for p in pages:
        p.on('console', lambda m, got=said[id(p)]: got.append(f'{m.type}: {m.text}'[:300]))
        p.on('pageerror', lambda e, got=said[id(p)]: got.append(f'page error: {e}'[:300]))
        p.goto(f'{url}?token={TOKEN}', wait_until='commit', timeout=60_000)
    for i, p in enumerate(pages):
        try:
            p.wait_for_selector('[data-kpi=sharpe]', timeout=300_000)
            p.wait_for_function("document.querySelectorAll('.js-plotly-plot').length >= 4", timeout=60_000)
        except PlaywrightTimeout as e:
            shows = p.evaluate('document.body ? document.body.innerText : ""')[:1500]
            tail = server_log.read_text()[-3000:] if server_log else ''
            raise AssertionError(f'viewer {i + 1} of {n} not drawn ({str(e).splitlines()[0]}); the page shows:\n'
                                 f'{shows}\nits console:\n' + '\n'.join(said[id(p)][-30:]) +
                                 f'\nthe server log ends:\n{tail}') from None
    return pages

def open_page(browser, demo: dict): return open_pages(browser, demo['url'], server_log=demo['dir'] / 'server.log')[0]

def test_refused_without_the_token(demo):
    for path in ('/', f'/?token=not-{TOKEN}', '/api/kernels', '/voila/render/dashboard.ipynb'):
        status, where = get(demo['port'], path)
        assert status in (302, 403, 404) and (status != 302 or '/login' in where), (path, status, where)

def test_page_shows_the_store_exports_refreshes_and_halts(demo, browser):
    page = open_page(browser, demo)
    assert TOKEN not in page.content()
    st = Store(demo['settings'].store.url)
    try:
        # every KPI, with the values the store holds (the 90-day window the page opens on)
        want = trading_kpis(load_snapshot(st, 'PAPER'), 90).set_index('name').value
        got = kpis(page)
        assert set(got) == set(want.index)
        for k, v in want.items(): assert (pd.isna(v) and pd.isna(got[k])) or got[k] == pytest.approx(v, rel=1e-12), k
        assert got['equity'] == pytest.approx(st.equity('PAPER').equity.iloc[-1])
        assert got['positions'] == len(st.positions('PAPER'))
        # the system panel's uptime: what `twb status` computes at the page's time
        up = page.eval_on_selector('#twb-uptime',
                                   'e => [e.dataset.share, e.dataset.up, e.dataset.total, e.dataset.asOf]')
        share, n_up, total = uptime(st, demo['settings'], datetime.fromisoformat(up[3]))
        assert (float(up[0]), int(up[1]), int(up[2])) == (share, n_up, total) and 0 < share <= 1, (up, share, n_up,
                                                                                                   total)
        # every chart, the equity chart ending at the store's last equity
        names = page.eval_on_selector_all('.js-plotly-plot', 'els => els.map(e => e.data.map(d => d.name))')
        assert [['equity', 'drawdown'], ['weight'], ['accuracy', 'mean confidence']] == [
            n for n in names if 'calibration' not in ' '.join(n)
        ][:3]
        last_y = page.eval_on_selector_all('.js-plotly-plot', 'els => Array.from(els[0]._fullData[0].y).slice(-1)[0]')
        assert last_y == pytest.approx(st.equity('PAPER').equity.iloc[-1])
        # exports: CSV and JSON of the KPI frame equal each other and what is drawn
        files = {}
        for fmt in ('csv', 'json'):
            with page.expect_download() as dl: page.click(f'#twb-export-kpis-{fmt}')
            files[fmt] = Path(dl.value.path()).read_text()
        csv = pd.read_csv(pd.io.common.StringIO(files['csv'])).set_index('name').value
        js = pd.DataFrame(json.loads(files['json'])).set_index('name').value.astype(float)
        pd.testing.assert_series_equal(csv, js, check_exact=True)
        assert dict(csv.fillna(-1)) == {k: (-1 if pd.isna(v) else v) for k, v in got.items()}
        page.screenshot(path=str(ROOT / 'docs' / 'dashboard.png'))
        # a new fill through the real order path appears within one refresh
        last = st.equity('PAPER').index[-1]
        st.clock = clock = FixedClock((last + pd.Timedelta(minutes=5)).to_pydatetime())
        om = _order_manager(demo['settings'], st, clock)
        assert om.start().ok
        px = float(st.prices('AAPL').close.iloc[-1])
        assert om.manage_order_lifecycle(Order('dash-test-fill', 'AAPL', 'BUY', 1, 'MKT', None, 'DAY', 'dash-test',
                                               'browser test'), px).status == 'COMPLETE'
        page.wait_for_function(f"Number(document.querySelector('[data-kpi=trades]').dataset.value) === "
                               f"{got['trades'] + 1}",
                               timeout=(REFRESH_S + 30) * 1000)
        # the kill switch: name and reason, HALTED in the store, the next order refused
        page.fill('input[placeholder="your name (recorded)"]', 'ops-test')
        page.fill('input[placeholder="why (required)"]', 'browser test halt')
        page.click('button:has-text("HALT trading")')
        page.wait_for_selector('#twb-state[data-state=HALTED]', timeout=30_000)
        s = st.trading_state()
        assert (s.state.value, s.by, s.reason) == ('HALTED', 'ops-test', 'browser test halt')
        r = om.manage_order_lifecycle(Order('dash-test-after-halt', 'AAPL', 'BUY', 1, 'MKT', None, 'DAY', 'dash-test',
                                            'browser test'), px)
        assert r.status == 'REJECTED' and 'risk_state' in r.reasons
        page.click('button:has-text("Resume")')
        page.wait_for_selector('#twb-state[data-state=ACTIVE]', timeout=30_000)
        assert TOKEN not in page.content()
    finally:
        st.close(); page.close(run_before_unload=True)
    assert TOKEN not in (demo['dir'] / 'server.log').read_text()

def test_a_viewer_cannot_run_code(demo, browser):
    "The kernel answers widget messages only: a viewer's kernel_info_request is answered, its execute_request dropped."
    page = open_page(browser, demo)
    kernel = re.search(r'"kernelId": "([0-9a-f-]+)"', page.content()).group(1)
    marker = demo['dir'] / f'pwned-{uuid.uuid4().hex}'
    def msg(kind: str, content: dict) -> str:
        return json.dumps(dict(header=dict(msg_id=uuid.uuid4().hex, msg_type=kind, username='viewer',
                                           session=uuid.uuid4().hex, date='',
                                           version='5.3'), parent_header={}, metadata={}, channel='shell', buffers=[],
                                           content=content))
    async def attack() -> list[str]:
        ws = await websocket_connect(f"ws://127.0.0.1:{demo['port']}/api/kernels/{kernel}/channels?token={TOKEN}")
        seen = []
        ws.write_message(msg('kernel_info_request', {}))
        ws.write_message(msg('execute_request',
                             dict(code=f'open({str(marker)!r}, "w").write("x")', silent=False, store_history=False,
                                                     user_expressions={}, allow_stdin=False, stop_on_error=True)))
        t0 = time.monotonic()
        while time.monotonic() - t0 < 8:
            try: m = await asyncio.wait_for(ws.read_message(), 1)
            except asyncio.TimeoutError: continue
            if m is None: break
            seen.append(json.loads(m)['header']['msg_type'])
        ws.close()
        return seen
    # playwright's loop owns this thread
    with ThreadPoolExecutor(1) as ex: seen = ex.submit(asyncio.run, attack()).result()
    page.close(run_before_unload=True)
    assert 'kernel_info_reply' in seen, seen          # the channel works ...
    # ... but runs no code
    assert 'execute_reply' not in seen and 'execute_input' not in seen and not marker.exists(), seen

WRITER = """
import sys, pathlib, pandas as pd
from trading_workbench.core.config import Settings
from trading_workbench.validation.backtest import backtest_sessions, backtest_store, run_backtest
s, stop = Settings.load(sys.argv[1]), pathlib.Path(sys.argv[2])
days = backtest_sessions(pd.Timestamp('2018-01-02'), pd.Timestamp('2018-02-07'))
# the next sessions of the viewers' account a week at a time, then fresh accounts, until told to stop
for k in range(10_000):
    if stop.exists(): break
    week, acct = days[5 * (k % 5):5 * (k % 5) + 5], 'PAPER' if k < 5 else f'WRITER{k // 5}'
    st = backtest_store(s, f'dash-writer-{k}', s.store.url, start=week[0])
    run_backtest(s, st, str(week[0].date()), str(week[-1].date()), tickers='AAPL,KO,XOM', account=acct,
                 order_prefix='daily' if acct == 'PAPER' else f'w{k}', run_id=f'dash-writer-{k}', progress=False)
    st.close()
    print('writer: week', k, acct, 'done', flush=True)
"""

def viewer_memory(server: subprocess.Popen, pages: list) -> dict[str, float]:
    "Resident MB of each page's own kernel (found by the kernel id in its page) and of the whole browser."
    ks = {c: ' '.join(c.cmdline()) for c in psutil.Process(server.pid).children(recursive=True)
          if 'ipykernel' in ' '.join(c.cmdline())}
    ids = [re.search(r'"kernelId": "([0-9a-f-]+)"', p.content()).group(1) for p in pages]
    mine = [next(c for c, cmd in ks.items() if f'kernel-{i}' in cmd) for i in ids]
    chrome = [c for c in psutil.Process().children(recursive=True) if 'chrom' in c.name().lower()]
    return dict(kernels=[round(c.memory_info().rss / 2**20) for c in mine],
                browser=round(sum(c.memory_info().rss for c in chrome) / 2**20),
                others=len(ks) - len(mine))   # preheated for the next viewers, or not yet shut down

def test_viewers_while_the_backtest_writes(demo, browser):
    """Two, then five viewers at once while the backtest writes into the same store: each sees every KPI; no lock error
    in a page, the server or the writer."""
    d, st = demo['dir'], Store(demo['settings'].store.url)
    n0, stop, log = len(st.signals()), d / 'writer.stop', open(d / 'writer.log', 'w')
    t0 = time.monotonic()
    writer = subprocess.Popen([sys.executable, '-c', WRITER, str(d / 'settings.ini'), str(stop)], stdout=log,
                              stderr=subprocess.STDOUT, cwd=d)
    try:
        for _ in range(600):                      # the writer is writing before anyone looks
            assert writer.poll() is None, (d / 'writer.log').read_text()[-3000:]
            if len(st.signals()) > n0: break
            time.sleep(0.2)
        print(f'writer writing after {time.monotonic() - t0:.1f} s')
        for n in (2, 5):
            t1 = time.monotonic()
            pages = open_pages(browser, demo['url'], n, demo['dir'] / 'server.log')
            print(f'{n} viewers: every page drawn in {time.monotonic() - t1:.1f} s')
            for p in pages:
                assert set(kpis(p)) == set(KPI_LABELS) and not math.isnan(kpis(p)['equity'])
                assert 'locked' not in p.content().lower() and 'refresh failed' not in p.content()
            mem = viewer_memory(demo['proc'], pages)
            print(
                f'{n} viewers: kernel MB {mem["kernels"]}, browser MB {mem["browser"]}, other kernels {mem["others"]}'
            )
            for p in pages: p.close(run_before_unload=True)
        assert writer.poll() is None, 'the writer was still writing while the viewers looked'
        assert len(st.signals()) > n0
    finally:
        stop.touch(); writer.wait(300); log.close(); st.close()
        print(f'writer stopped {time.monotonic() - t0:.1f} s after it started')
    out = (d / 'writer.log').read_text()
    assert writer.returncode == 0 and 'locked' not in out.lower(), out[-3000:]
    assert 'locked' not in (d / 'server.log').read_text().lower()

def test_refuses_a_public_host_without_a_token(tmp_path):
    "No TWB_DASHBOARD_TOKEN: a non-loopback host is refused before anything listens."
    ini = re.sub(r'(?m)^url = sqlite:///runs/workbench.db$', f'url = sqlite:///{tmp_path}/w.db',
                 (ROOT / 'settings.ini').read_text())
    (tmp_path / 'settings.ini').write_text(ini)
    env = {k: v for k, v in os.environ.items() if k != 'TWB_DASHBOARD_TOKEN'}
    r = subprocess.run([str(Path(sys.executable).parent / 'twb'), '--settings', str(tmp_path / 'settings.ini'),
                        'dashboard', '--host', '0.0.0.0',
                        '--port', str(free_port())], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and 'without TWB_DASHBOARD_TOKEN' in r.stderr, (r.returncode, r.stderr[-2000:])
