"""Child process for the SIGKILL crash test: submit a batch of orders through OrderManager + PaperBroker.

Usage: python crash_paper_batch.py DB_PATH RUN_ID N_SIGNALS
Prints READY once reconciled, then EVENT per broker event while executing; the parent kills it
after a random number of them.
"""
from __future__ import annotations
import sys
from pathlib import Path
from trading_workbench.core.config import Settings
from trading_workbench.core.clock import FixedClock
from trading_workbench.core.types import Signal, Provenance
from trading_workbench.execution.broker import SyncBroker
from trading_workbench.execution.paper import PaperBroker
from trading_workbench.data.sources import BundledSource
load_bundled = BundledSource().history
from trading_workbench.execution.orders import OrderManager
from trading_workbench.store.db import Store

ROOT = Path(__file__).parents[1]
TICKERS = ['AAPL', 'MSFT', 'JPM', 'XOM', 'KO', 'PG', 'PEP', 'WMT', 'INTC', 'CSCO', 'ORCL', 'IBM', 'NVDA', 'BA', 'CAT',
           'MMM', 'HD', 'DIS', 'MCD', 'NKE', 'V', 'MA', 'AMZN', 'GOOGL', 'JNJ']


def batch(clock, n):
    "The same signals every time: deterministic ids make a re-run resume, not repeat."
    prices = {t: float(load_bundled(t).close.iloc[-1]) for t in TICKERS[:n]}
    prov = Provenance('crash', '1')
    sigs = [Signal(t, 'BUY', 0.3 + 0.1 * (i % 6), 0.2, 0.01, 5, prices[t], clock.now(), prov) for i,
            t in enumerate(TICKERS[:n])]
    return sigs, prices


def build(db: str):
    settings = Settings.from_text((ROOT / 'settings.ini').read_text(), env={}, root=ROOT)
    clock = FixedClock('2018-02-07 21:00')
    store = Store(f'sqlite:///{db}', clock=clock)
    sb = SyncBroker(PaperBroker(store, settings, clock))
    return settings, clock, store, sb, OrderManager(sb, store, settings, clock)


if __name__ == '__main__':
    db, run_id, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    settings, clock, store, sb, oms = build(db)
    rep = oms.start()
    if not rep.ok: sys.exit(f'reconciliation failed: {rep.problems}')
    sigs, prices = batch(clock, n)
    print('READY', flush=True)
    sb.events.subscribe(lambda ev: print('EVENT', type(ev).__name__, flush=True))   # lets the parent aim its kill
    oms.execute(sigs, prices, run_id)
    print('DONE', flush=True)
    sb.close()
