"""The full-path backtest: a year of the 25-ticker universe (the budget is 60 s), the cost per session at 5 and 25
tickers, and a baseline measured in the same run: the same sessions with every model refitted every session, as
the daily run does (`refit='D'`), against the backtest's default (refit each quarter, `update()` in between).

With `--old REV` the year of 25 tickers also runs on the code of git revision REV (e.g. 2a12979, before the batched
signal writes), in a process of its own, for a before/after figure measured in the same run.

The machine is shared (the load average is printed): timings are noisy, compare the ratios.
Run: .venv/bin/python benchmarks/backtest.py [--old REV]
"""
from __future__ import annotations
import json, logging, os, subprocess, sys, tempfile, time
from pathlib import Path

import pandas as pd

from trading_workbench.core.config import Settings
from trading_workbench.validation.backtest import backtest_store, run_backtest

ROOT = Path(__file__).parents[1]
SETTINGS = Settings.from_text((ROOT / 'settings.ini').read_text(), env={}, root=ROOT)
YEAR = ('2017-02-08', '2018-02-07')
MONTH = ('2018-01-08', '2018-02-07')


def run(tmp: str, name: str, span: tuple[str, str], n: int, refit: str):
    store = backtest_store(SETTINGS, name, f'sqlite:///{tmp}/{name}.db', start=pd.Timestamp(span[0]))
    t0, c0 = time.perf_counter(), time.process_time()
    res = run_backtest(SETTINGS, store, *span, tickers=SETTINGS.universe.tickers[:n], refit=refit, run_id=name,
                       progress=False)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0     # one process: its CPU time is the whole cost
    store.close()
    return res, dict(case=name, sessions=len(res.days), tickers=n, refit=refit, fits=res.fits, updates=res.updates,
                     wall_s=round(wall, 1), cpu_s=round(cpu, 1), s_per_session=round(wall / len(res.days), 3))


OLD = r'''
import json, logging, sys, time
from pathlib import Path
import pandas as pd
from trading_workbench.core.config import Settings
from trading_workbench.validation.backtest import backtest_store, run_backtest
root, tmp = Path(sys.argv[1]), sys.argv[2]
s = Settings.from_text((root / 'settings.ini').read_text(), env={}, root=root)
logging.disable(logging.WARNING)
store = backtest_store(s, 'old', f'sqlite:///{tmp}/old.db', start=pd.Timestamp(sys.argv[3]))
t0, c0 = time.perf_counter(), time.process_time()
res = run_backtest(s, store, sys.argv[3], sys.argv[4], tickers=s.universe.tickers[:25], refit='Q', run_id='old',
                   progress=False)
print(json.dumps(dict(wall_s=time.perf_counter() - t0, cpu_s=time.process_time() - c0, orders=len(res.orders),
                      equity=float(res.days.equity.iloc[-1]))))
'''

def run_old(tmp: str, rev: str) -> dict:
    "The year of 25 tickers on the code of git revision `rev` (unpacked from git, run through PYTHONPATH)."
    sys.path.insert(0, str(Path(__file__).parent))
    from daily import old_code
    r = subprocess.run([sys.executable, '-c', OLD, str(ROOT), tmp, *YEAR], capture_output=True, text=True,
                       env=dict(os.environ, PYTHONPATH=str(old_code(Path(tmp), rev))))
    if r.returncode: raise SystemExit(f"the backtest on {rev} failed:\n{r.stderr[-3000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def main(old: str = ''):
    logging.disable(logging.WARNING)        # a sarimax convergence note per fit is not what this measures
    tmp = tempfile.mkdtemp()
    print(f"cpus {os.cpu_count()}, load average {os.getloadavg()[0]:.1f} (a shared machine: timings are noisy)")
    year, row = run(tmp, 'year-25-Q', YEAR, 25, 'Q')
    rows = [row, run(tmp, 'year-5-Q', YEAR, 5, 'Q')[1], run(tmp, 'month-5-Q', MONTH, 5, 'Q')[1],
            run(tmp, 'month-5-D (baseline)', MONTH, 5, 'D')[1]]
    print(f"load average after: {os.getloadavg()[0]:.1f}")
    t = pd.DataFrame(rows).set_index('case')
    t['cpu_ms_per_ticker_session'] = (1000 * t.cpu_s / t.sessions / t.tickers).round(2)
    print(t.to_string())
    q, d = t.loc['month-5-Q', 'cpu_ms_per_ticker_session'], t.loc['month-5-D (baseline)', 'cpu_ms_per_ticker_session']
    print(f"CPU per ticker-session, 5 tickers, the same 22 sessions: refit every session (the daily run's way) {d:.1f} "
          f"ms "
          f"vs quarterly refit + update() {q:.1f} ms: {d / q:.1f}x")
    y5, y25 = t.loc['year-5-Q', 'cpu_ms_per_ticker_session'], t.loc['year-25-Q', 'cpu_ms_per_ticker_session']
    print(
        f"CPU per ticker-session over the year: {y5:.1f} ms at 5 tickers, {y25:.1f} ms at 25; "
        f"per session {t.loc['year-5-Q', 's_per_session']:.3f} s and {t.loc['year-25-Q', 's_per_session']:.3f} s wall"
    )
    w, c = t.loc['year-25-Q', 'wall_s'], t.loc['year-25-Q', 'cpu_s']
    print(f"a year of 25 tickers through the full path: {w:.1f} s wall, {c:.1f} s CPU (budget 60 s: wall "
          f"{'within' if w < 60 else 'OVER'}, "
          f"CPU {'within' if c < 60 else 'OVER'}); refitting every session would cost about {d * 25 * 252 / 1000:.0f} "
          f"s CPU")
    if old:
        o = run_old(tmp, old)
        same = o['orders'] == len(year.orders) and abs(o['equity'] - year.days.equity.iloc[-1]) < 1e-6
        print(f"the same year on {old}: {o['wall_s']:.1f} s wall, {o['cpu_s']:.1f} s CPU; now {c:.1f} s CPU "
              f"({o['cpu_s'] / c:.2f}x less); "
              f"orders and end equity {'identical' if same else 'DIFFERENT'}")
    print('\nthe year against buy-and-hold of the same 25 tickers:')
    print(year.metrics.to_string(float_format=lambda v: f'{v:,.4f}'))


if __name__ == '__main__':
    main(sys.argv[sys.argv.index('--old') + 1] if '--old' in sys.argv else '')
