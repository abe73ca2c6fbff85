"""The operators' dashboard: time from navigation to every KPI visible (aim < 3 s), the data query time of one refresh
on a year of history (aim < 200 ms) and the memory per viewer, each beside a baseline measured in the same run:

- query: `monitoring.dashboard.refresh` on a page's second and later refreshes (the context
keeps the signals it read and its
  risk manager), its first refresh (a fresh context), the idle refresh (`data_version`, what the page runs when nothing
  changed), against the store's own typed readers (`Store.signals/orders/fills/equity`), the
  obvious way to build the same page;
- page: `twb dashboard` (preheated kernels) against a one-cell Voila notebook served the same way
(the floor Voila's page sets):
  navigation to every KPI, and to every chart (drawn once the page has built its widgets);
- memory: each viewer's own kernel (found by the kernel id in its page) against the
one-cell notebook's, and the browser.

The year store comes from the walk-forward backtest (25 tickers, 252 sessions; about a minute), or `--store URL`.
The machine is shared (the load average is printed): timings are noisy, compare the ratios.
Run: .venv/bin/python benchmarks/dashboard.py [--store sqlite:////path/workbench.db]
"""
from __future__ import annotations
import argparse, logging, os, re, shutil, socket, statistics, subprocess, sys, tempfile, time, uuid
from pathlib import Path

import nbformat
import pandas as pd
import psutil
from playwright.sync_api import sync_playwright

from trading_workbench.core.clock import SystemClock
from trading_workbench.core.config import Settings
from trading_workbench.monitoring.dashboard import Context, data_version, refresh
from trading_workbench.store.db import Store
from trading_workbench.validation.backtest import backtest_store, run_backtest

ROOT = Path(__file__).parents[1]
CHROMIUM = os.environ.get('TWB_CHROMIUM') or shutil.which('chromium') or '/usr/bin/chromium'
TOKEN = 'bench-' + uuid.uuid4().hex

def ms(f, n: int = 5) -> float:
    "Median wall time of `f()` over `n` runs, in ms."
    out = []
    for _ in range(n):
        t0 = time.perf_counter(); f(); out.append((time.perf_counter() - t0) * 1000)
    return statistics.median(out)

def year_store(tmp: Path, url: str) -> str:
    if url: return url
    settings = Settings.load(ROOT / 'settings.ini')
    url = f'sqlite:///{tmp}/year.db'
    st = backtest_store(settings, 'bench-year', url, start=pd.Timestamp('2017-02-08'))
    run_backtest(settings, st, '2017-02-08', '2018-02-07', account='PAPER', order_prefix='daily', progress=False)
    st.close()
    return url

def queries(url: str) -> list[dict]:
    settings = Settings.load(ROOT / 'settings.ini')
    st = Store(url)
    ctx = Context(st, settings, SystemClock(), 'PAPER')
    naive = lambda: (st.signals(), st.orders(), st.fills(), st.equity('PAPER'), st.positions('PAPER'), st.alerts(),
                     st.runs())
    v = refresh(ctx, 365)
    rows = [dict(case='refresh, 365 days (all views), a page\'s next refreshes', ms=ms(lambda: refresh(ctx, 365))),
            dict(case='refresh, 30 days (all views), a page\'s next refreshes', ms=ms(lambda: refresh(ctx, 30))),
            dict(case='refresh, 90 days (all views), a page\'s next refreshes', ms=ms(lambda: refresh(ctx, 90))),
            dict(case='first refresh, 90 days (a fresh context)',
                 ms=ms(lambda: refresh(Context(st, settings, SystemClock(), 'PAPER'), 90))),
            dict(case='idle refresh: data_version only', ms=ms(lambda: data_version(st))),
            dict(case='baseline: Store readers, raw rows only', ms=ms(naive))]
    print(f"year store: {len(v.snapshot.signals)} signals, {len(v.snapshot.orders)} orders, {len(v.snapshot.fills)} "
          f"fills, "
          f"{len(v.snapshot.equity)} equity points")
    st.close()
    return rows

def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0)); return s.getsockname()[1]

def serve(cmd: list[str], port: int, env: dict, cwd: Path) -> subprocess.Popen:
    p = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    import http.client
    for _ in range(240):
        try:
            c = http.client.HTTPConnection('127.0.0.1', port, timeout=5); c.request('GET', '/login')
            if c.getresponse().status == 200: return p
        except OSError: time.sleep(0.25)
    raise RuntimeError(f'server on {port} did not start')

def kernel_mb(server: subprocess.Popen, pg) -> float:
    "Resident MB of the kernel serving page `pg` (its kernel id is in the page)."
    kid = re.search(r'"kernelId": "([0-9a-f-]+)"', pg.content()).group(1)
    k = next(c for c in psutil.Process(server.pid).children(recursive=True) if f'kernel-{kid}' in ' '.join(c.cmdline()))
    return k.memory_info().rss / 2**20

def browser_mb() -> float:
    return sum(c.memory_info().rss for c in psutil.Process().children(recursive=True)
               if 'chrom' in c.name().lower()) / 2**20

def page(browser, url: str, selector: str, charts: int = 0) -> tuple[float, float]:
    "Seconds from navigation to `selector` (every KPI) and to `charts` plotly charts drawn."
    pg = browser.new_page()
    t0 = time.perf_counter()
    pg.goto(f'{url}?token={TOKEN}', wait_until='commit', timeout=300_000)
    pg.wait_for_selector(selector, timeout=300_000)
    if selector.startswith('[data-kpi'): pg.wait_for_function("document.querySelectorAll('[data-kpi]').length >= 12")
    dt = time.perf_counter() - t0
    pg.wait_for_function(f"document.querySelectorAll('.js-plotly-plot').length >= {charts}", timeout=300_000)
    dc = time.perf_counter() - t0
    pg.close(run_before_unload=True)
    return dt, dc

def pages(tmp: Path, url: str) -> list[dict]:
    ini = re.sub(r'(?m)^url = sqlite:///runs/workbench.db$', f'url = {url}', (ROOT / 'settings.ini').read_text())
    (tmp / 'settings.ini').write_text(ini)
    hello = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("from IPython.display import HTML\nHTML('<b "
                                                                      "id=\"hello\">1</b>')")])
    hello.metadata['kernelspec'] = dict(name='python3', display_name='Python 3', language='python')
    nbformat.write(hello, tmp / 'hello.ipynb')
    env = os.environ | dict(TWB_DASHBOARD_TOKEN=TOKEN, JUPYTER_TOKEN=TOKEN)
    p1, p2 = free_port(), free_port()
    dash = serve([str(Path(sys.executable).parent / 'twb'), '--settings', str(tmp / 'settings.ini'), 'dashboard',
                  '--port', str(p1)], p1, env, tmp)
    base = serve([sys.executable, '-m', 'voila', str(tmp / 'hello.ipynb'), '--no-browser', '--token', f'--port={p2}',
                  '--preheat_kernel=True', '--pool_size=2'], p2, env, tmp)
    time.sleep(30)      # both pools filled: each kernel has run its page
    rows = []
    try:
        with sync_playwright() as pw:
            b = pw.chromium.launch(executable_path=CHROMIUM,
                                   args=['--no-sandbox', '--disable-gpu', '--disable-background-networking'])
            for i in range(2):      # the second visit: the server and the OS caches are warm
                (d, c), (h, _) = (
                    page(b, f'http://127.0.0.1:{p1}/', '[data-kpi=sharpe]', 4),
                    page(b, f'http://127.0.0.1:{p2}/', '#hello'),
                )
                rows += [dict(case=f'visit {i + 1}: navigation to every KPI visible', s=round(d, 2)),
                         dict(case=f'visit {i + 1}: navigation to every chart drawn', s=round(c, 2)),
                         dict(case=f'visit {i + 1}: baseline one-cell Voila page', s=round(h, 2),
                              ratio=round(d / h, 2))]
                time.sleep(15)      # the pools refill
            m0 = browser_mb()
            pd_, ph = b.new_page(), b.new_page()
            pd_.goto(f'http://127.0.0.1:{p1}/?token={TOKEN}')
            pd_.wait_for_selector('[data-kpi=sharpe]', timeout=300_000)
            ph.goto(f'http://127.0.0.1:{p2}/?token={TOKEN}'); ph.wait_for_selector('#hello', timeout=300_000)
            dk, hk = kernel_mb(dash, pd_), kernel_mb(base, ph)
            rows += [dict(case='memory per viewer: its dashboard kernel (MB)', s=round(dk)),
                     dict(case='memory per viewer: one-cell Voila kernel (MB)', s=round(hk), ratio=round(dk / hk, 2)),
                     dict(case='memory per viewer: browser, two more pages (MB)', s=round(browser_mb() - m0)),
                     dict(case='dashboard server process (MB)',
                          s=round(psutil.Process(dash.pid).memory_info().rss / 2**20))]
            b.close()
    finally:
        for p in (dash, base): p.terminate(); p.wait(30)
    return rows

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--store', default='')
    ap.add_argument('--no-browser', action='store_true')
    a = ap.parse_args()
    logging.disable(logging.WARNING)
    tmp = Path(tempfile.mkdtemp())
    print(f"cpus {os.cpu_count()}, load average {os.getloadavg()[0]:.1f} (a shared machine: timings are noisy)")
    url = year_store(tmp, a.store)
    q = pd.DataFrame(queries(url))
    q['ratio_to_baseline'] = (q.ms / q.ms.iloc[-1]).round(2)
    print('\ndata query time of a refresh (median of 5; aim: under 200 ms)\n' + q.round(1).to_string(index=False))
    if not a.no_browser:
        print(
            '\npage (seconds) and memory (MB); aim: every KPI visible in under 3 s\n'
            + pd.DataFrame(pages(tmp, url)).to_string(index=False)
        )
    print(f"load average after: {os.getloadavg()[0]:.1f}")

if __name__ == '__main__':
    main()
