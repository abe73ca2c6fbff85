"""Child process for the IBKR SIGKILL crash test: submit a batch of orders through OrderManager + IBKRBroker to the
TWS test server (which acknowledges slowly), printing EVENT per broker event so the parent can aim its kill.

Usage: python crash_ibkr_batch.py DB_PATH PORT RUN_ID N_SIGNALS
"""
from __future__ import annotations
import sys
from pathlib import Path
from trading_workbench.core.config import Settings
from trading_workbench.core.clock import FixedClock
from trading_workbench.core.types import Signal, Provenance
from trading_workbench.execution.broker import SyncBroker
from trading_workbench.execution.ibkr import IBKRBroker
from trading_workbench.execution.orders import OrderManager
from trading_workbench.store.db import Store

ROOT = Path(__file__).parents[1]
PRICES = {'AAPL': 159.54, 'MSFT': 89.61, 'JPM': 110.2, 'XOM': 82.9, 'KO': 45.8, 'PG': 77.5, 'PEP': 113.6, 'WMT': 98.0}
CLOCK_AT = '2026-11-24 15:00'


def batch(clock, n):
    "The same signals every time: deterministic ids make a re-run resume, not repeat."
    prov = Provenance('crash', '1')
    tickers = list(PRICES)[:n]
    return [Signal(t, 'BUY', 0.3 + 0.1 * (i % 5), 0.2, 0.01, 5, PRICES[t], clock.now(), prov) for i,
            t in enumerate(tickers)], \
           {t: PRICES[t] for t in tickers}


def build(db: str, port: int):
    "Store, broker, facade and order manager of one process."
    settings = Settings.from_text((ROOT / 'settings.ini').read_text(), env={}, root=ROOT)
    clock = FixedClock(CLOCK_AT)
    store = Store(f'sqlite:///{db}', clock=clock)
    sb = SyncBroker(IBKRBroker(settings, clock, port=port, ack_timeout=2.0, connect_timeout=5.0))
    return clock, store, sb, OrderManager(sb, store, settings, clock, order_timeout=2.0)


if __name__ == '__main__':
    db, port, run_id, n = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    clock, store, sb, oms = build(db, port)
    rep = oms.start()
    if not rep.ok: sys.exit(f'reconciliation failed: {rep.problems}')
    sigs, prices = batch(clock, n)
    print('READY', flush=True)
    sb.events.subscribe(lambda ev: print('EVENT', type(ev).__name__, flush=True))
    oms.execute(sigs, prices, run_id)
    print('DONE', flush=True)
    sb.close()
