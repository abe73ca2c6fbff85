"""Data failover cost: a primary vendor that hangs, for a universe of N tickers. Baseline (measured in the same run):
the manager as it was, each ticker paying the primary's full retries and timeouts; against: a per-source time budget
(`[data] source_budget_s`) and a source that failed for good being skipped for the rest of the run. Both serve every
ticker from the second source (Alpha Vantage on the local vendor server). Prints seconds per run, the recorded
time-to-failover of the first ticker, and the ratio, at a small and a large universe.

    .venv/bin/python benchmarks/data_failover.py [--sizes 3,12] [--budget 0.5]
"""
import argparse, logging, sys, tempfile, time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / 'tests'))


def run(tickers, budget, skip, retries=2, timeout=0.5):
    "Seconds to load `tickers` with Yahoo hanging on every request; the first ticker's recorded failover time."
    import httpx
    from vendor_http_server import VendorServer
    from trading_workbench.core.clock import FixedClock
    from trading_workbench.core.config import Secret
    from trading_workbench.data.manager import DataSourceManager
    from trading_workbench.data.sources import AlphaVantageSource, YFinanceSource
    from trading_workbench.store.db import Store

    clock = FixedClock('2018-02-08 12:00')
    with VendorServer(hang_s=timeout * 4, alpha_vantage_premium=True) as srv, httpx.Client(timeout=timeout) as client, \
            tempfile.TemporaryDirectory() as tmp:
        store = Store(f'sqlite:///{tmp}/wb.db', clock=clock)
        y = YFinanceSource(srv.base_url('yahoo'), client, retries=retries, backoff_s=0.05, budget_s=budget)
        av = AlphaVantageSource(srv.base_url('alphavantage'), client, Secret('av-test-key-123'), premium=True,
                                retries=0, backoff_s=0)
        mgr = DataSourceManager([y, av], store, clock=clock, default_start='2017-01-03')
        # the old behaviour: every ticker asks the dead source again
        if not skip: mgr.DOWN_FOR = timedelta(0)
        srv.inject('yahoo', *['hang'] * (len(tickers) * (retries + 1)))
        t0 = time.perf_counter()
        data = mgr.load(tickers, progress=False)
        secs = time.perf_counter() - t0
        if data.tickers('ok') != list(tickers): sys.exit(f'not every ticker served: {data.report()}')
        first = mgr.served[0].failover_seconds
        store.close()
    return secs, first


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--sizes', default='3,12')
    ap.add_argument('--budget', type=float, default=0.5)
    args = ap.parse_args()
    logging.disable(logging.ERROR)                                 # the failover warnings are the point, not the output
    from trading_workbench.data.sources import BundledSource
    universe = [t for t in BundledSource().tickers() if not t.startswith('^')]
    print(f"primary hangs (client timeout 0.5 s, 2 retries); budget {args.budget} s")
    print(f"{'tickers':>7} | {'baseline s':>10} | {'budget+skip s':>13} | {'first failover s':>16} | ratio")
    for n in map(int, args.sizes.split(',')):
        tickers = universe[:n]
        base, _ = run(tickers, budget=None, skip=False)
        new, first = run(tickers, budget=args.budget, skip=True)
        print(f"{n:>7} | {base:>10.2f} | {new:>13.2f} | {first:>16.2f} | {base / new:5.1f}x")


if __name__ == '__main__':
    main()
