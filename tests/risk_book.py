"""Shared set-up for the risk tests: a store with bundled prices, a paper broker marked at closes, an order manager with
the risk gate."""
from __future__ import annotations
import dataclasses
from pathlib import Path

import pandas as pd

from trading_workbench.core.clock import FixedClock
from trading_workbench.core.config import Settings
from trading_workbench.core.types import Order
from trading_workbench.data.sources import BundledSource
from trading_workbench.execution.broker import SyncBroker
from trading_workbench.execution.orders import OrderManager, limit_for
from trading_workbench.execution.paper import PaperBroker
from trading_workbench.risk.manager import RiskGate, RiskManager
from trading_workbench.store.db import Store

ROOT = Path(__file__).parents[1]
NAMES = ['AAPL', 'MSFT', 'JPM', 'XOM', 'KO', 'JNJ', 'PG', 'WMT']


def closes(names=NAMES) -> pd.DataFrame:
    src = BundledSource()
    return pd.DataFrame({t: src.history(t).close for t in names}).sort_index()


def settings_with(**risk) -> Settings:
    s = Settings.from_text((ROOT / 'settings.ini').read_text(), env={}, root=ROOT)
    return dataclasses.replace(s, risk=dataclasses.replace(s.risk, **risk))


def build(db: str, settings: Settings, start: str, names=NAMES, with_prices: bool = True):
    "Store, clock, broker, order manager (with the gate) and risk manager on `db`."
    clock = FixedClock(start)
    store = Store(f'sqlite:///{db}', clock=clock)
    if with_prices:
        src = BundledSource()
        for t in names:
            if store.price_range(t) is None: store.upsert_prices(t, src.history(t), 'bundled')
    sb = SyncBroker(PaperBroker(store, settings, clock))
    om = OrderManager(sb, store, settings, clock, gate=RiskGate(store), account_name='PAPER')
    rm = RiskManager(store, om, settings, clock, account='PAPER')
    return clock, store, sb, om, rm


def buy_book(sb, om, prices: dict, budget: float = 90_000, run: str = 'setup') -> None:
    "One long position per ticker, about `budget` each, filled at `prices`."
    sb.run(sb.broker.mark(prices))
    for t, px in prices.items():
        r = om.manage_order_lifecycle(Order(f'{run}-{t}', t, 'BUY', int(budget // px),
                                            limit_price=limit_for('BUY', px)), px)
        assert r.status == 'COMPLETE', r.reasons
