"""The full-path backtest: a year of the 25-ticker universe (the budget is 60 s), the cost per session at 5 and 25
tickers, and a baseline measured in the same run: the same sessions with every model refitted every session, as
the daily run does (`refit='D'`), against the backtest's default (refit each quarter, `update()` in between).

The machine is shared (the load average is printed): timings are noisy, compare the ratios.
Run: .venv/bin/python benchmarks/backtest.py
"""
from __future__ import annotations
import logging, os, tempfile, time
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
    res = run_backtest(SETTINGS, store, *span, tickers=SETTINGS.universe.tickers[:n], refit=refit, run_id=name, progress=False)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0     # one process: its CPU time is the whole cost
    store.close()
    return res, dict(case=name, sessions=len(res.days), tickers=n, refit=refit, fits=res.fits, updates=res.updates,
                     wall_s=round(wall, 1), cpu_s=round(cpu, 1), s_per_session=round(wall / len(res.days), 3))


def main():
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
    print(f"CPU per ticker-session, 5 tickers, the same 22 sessions: refit every session (the daily run's way) {d:.1f} ms "
          f"vs quarterly refit + update() {q:.1f} ms: {d / q:.1f}x")
    y5, y25 = t.loc['year-5-Q', 'cpu_ms_per_ticker_session'], t.loc['year-25-Q', 'cpu_ms_per_ticker_session']
    print(f"CPU per ticker-session over the year: {y5:.1f} ms at 5 tickers, {y25:.1f} ms at 25; "
          f"per session {t.loc['year-5-Q', 's_per_session']:.3f} s and {t.loc['year-25-Q', 's_per_session']:.3f} s wall")
    w, c = t.loc['year-25-Q', 'wall_s'], t.loc['year-25-Q', 'cpu_s']
    print(f"a year of 25 tickers through the full path: {w:.1f} s wall, {c:.1f} s CPU (budget 60 s: wall {'within' if w < 60 else 'OVER'}, "
          f"CPU {'within' if c < 60 else 'OVER'}); refitting every session would cost about {d * 25 * 252 / 1000:.0f} s CPU")
    print('\nthe year against buy-and-hold of the same 25 tickers:')
    print(year.metrics.to_string(float_format=lambda v: f'{v:,.4f}'))


if __name__ == '__main__':
    main()
