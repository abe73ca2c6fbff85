"""Deployment costs: `twb --help` against importing the whole CLI eagerly (what it did before), the preflight with
one data source against five (three of them HTTP vendors on a local protocol server, keys included), and the time
a supervisor takes to restart a killed child (the backoff's first step is 0.1 s here), against starting it cold.

The machine is shared (the load average is printed): timings are noisy, compare the ratios.
Run: .venv/bin/python benchmarks/deploy.py   (rollback times: .venv/bin/pytest tests/test_release.py -s)
"""
from __future__ import annotations
import os, subprocess, sys, tempfile, time
from pathlib import Path

ROOT = Path(__file__).parents[1]
sys.path.insert(0, str(ROOT / 'tests'))

from vendor_http_server import VendorServer  # noqa: E402
from trading_workbench.deploy.preflight import run_preflight  # noqa: E402
from trading_workbench.deploy.serve import ChildSpec, Supervisor  # noqa: E402
from trading_workbench.store.db import Store  # noqa: E402

def wall(argv) -> float:
    t0 = time.perf_counter(); subprocess.run(argv, check=True, capture_output=True); return time.perf_counter() - t0

def best(fn, n=3) -> float: return min(fn() for _ in range(n))

def main():
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    py = sys.executable
    help_s = best(
        lambda: wall(
            [py, '-c', 'import sys; from trading_workbench.cli import main; sys.argv[1:] = ["--help"]; main()']
        )
    )
    eager_s = best(lambda: wall([py, '-c', 'import trading_workbench.cli as c; c.import_all()']))
    print(f"twb --help {help_s:.2f} s; importing everything a command needs {eager_s:.2f} s (baseline): ratio "
          f"{eager_s / help_s:.1f}x")
    with tempfile.TemporaryDirectory() as d, VendorServer() as v:
        url = f'sqlite:///{d}/w.db'; Store(url).close()
        base = dict(TWB_STORE_URL=url, TWB_FLAGS_ENABLE_LLM='false',
                    TWB_DATA_CSV_DIR=str(ROOT / 'trading_workbench' / 'data' / 'prices'))
        small = dict(base, TWB_DATA_SOURCES='bundled')
        large = dict(base, TWB_DATA_SOURCES='bundled, csv, yfinance, alpha_vantage, finnhub',
                     TWB_ALPHA_VANTAGE_API_KEY='av-test-key-123',
                     TWB_FINNHUB_API_KEY='fh-test-key-456', TWB_DATA_YFINANCE_BASE_URL=v.base_url('yahoo'),
                     TWB_DATA_ALPHA_VANTAGE_BASE_URL=v.base_url('alphavantage'),
                     TWB_DATA_FINNHUB_BASE_URL=v.base_url('finnhub'))
        run_preflight(ROOT / 'settings.ini', small, ROOT / 'constraints.txt')     # warm the imports
        for name, env in (('1 source', small), ('5 sources', large)):
            t0 = time.perf_counter()
            rep = run_preflight(ROOT / 'settings.ini', env, ROOT / 'constraints.txt')
            s = time.perf_counter() - t0
            print(f"preflight, {name}: {s:.2f} s, {len(rep.checks)} checks, "
                  f"{'passed' if rep.ok else 'FAILED: ' + ', '.join(c.name for c in rep.failed())}")
    sleeper = ChildSpec('sleeper', (py, '-c', 'import time; time.sleep(60)'))
    sup = Supervisor([sleeper], backoff=(0.1, 1.0), schedule=False, grace_s=5)
    t0 = time.perf_counter(); sup.step(); cold = time.perf_counter() - t0
    c = sup.children['sleeper']; c.proc.kill(); c.proc.wait()
    t0 = time.perf_counter()
    while True:
        sup.step()
        if c.running and c.restarts == 1: break
        time.sleep(0.01)
    restart = time.perf_counter() - t0
    sup.stop()
    print(f"restart after a kill {restart:.2f} s (0.1 s of it backoff); a cold start {cold:.3f} s (baseline): ratio "
          f"{restart / cold:.1f}x")

if __name__ == '__main__':
    main()
