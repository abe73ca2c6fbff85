"""Risk manager at 50 and 500 positions on real bundled returns (each synthetic ticker is
a bundled stock's daily returns
rolled by a different number of days):

1. evaluating every limit (`evaluate_limits`: drawdown, daily loss, position loss, gross exposure, historical VaR) vs a
   straightforward per-position pandas loop computing the same figures (aim: under 10 ms at 500 positions);
2. from a breach to all of the action's orders journaled (`RiskManager.check` escalates,
previews and journals the action,
   then `journal_action` journals its orders in one transaction) vs the same with one
   transaction per order (aim: under 1 s).

Prints each time beside its baseline measured in this run."""
from __future__ import annotations
import dataclasses, math, tempfile, time
from pathlib import Path

import numpy as np
import pandas as pd

from trading_workbench.core.clock import FixedClock
from trading_workbench.core.config import Settings
from trading_workbench.core.types import Position
from trading_workbench.models.base import bundled_closes
from trading_workbench.risk.manager import Book, RiskManager, evaluate_limits, order_from_dict
from trading_workbench.store.db import Store

ROOT = Path(__file__).parents[1]
SETTINGS = Settings.from_text((ROOT / 'settings.ini').read_text(), env={}, root=ROOT)
BASE = bundled_closes(*SETTINGS.universe.tickers).loc[:'2018-02-07']


def universe(n: int) -> tuple[pd.DataFrame, dict[str, float]]:
    """Closes of `n` synthetic tickers (a bundled stock's closes rebased and rolled) for the last 300
    sessions, and today's marks."""
    cols = {}
    for i in range(n):
        s = BASE.iloc[:, i % BASE.shape[1]]
        r = s.pct_change().fillna(0).to_numpy()
        r = np.roll(r, 7 * (i // BASE.shape[1]))
        cols[f'T{i:03d}'] = 50 * np.cumprod(1 + r)
    closes = pd.DataFrame(cols, index=BASE.index).iloc[-300:]
    return closes, closes.iloc[-1].to_dict()


def book_for(n: int, risk) -> Book:
    closes, marks = universe(n)
    pos = [Position(t, int(1_500_000 / n // closes[t].iloc[-20]) + 1, float(closes[t].iloc[-20])) for t in closes]
    cash = 1_000_000 - sum(p.quantity * p.avg_cost for p in pos)
    return Book(pos, cash, marks, 1_050_000, 1_020_000, closes.pct_change().iloc[1:].tail(risk.var_window))


def baseline_limits(book: Book, risk) -> dict[str, float]:
    "The same figures the plain way: a loop over positions, pandas Series arithmetic, one at a time."
    eq = book.cash
    for p in book.positions: eq += p.quantity * book.marks[p.ticker]
    losses, gross, pnl = {}, 0.0, None
    for p in book.positions:
        m = book.marks[p.ticker]
        losses[p.ticker] = (p.avg_cost - m) / p.avg_cost if p.quantity > 0 else (m - p.avg_cost) / p.avg_cost
        gross += abs(p.quantity * m)
        s = book.returns[p.ticker] * (p.quantity * m)
        pnl = s if pnl is None else pnl + s
    return dict(drawdown=1 - eq / book.peak_equity, daily_loss=max(0.0, 1 - eq / book.open_equity),
                position_loss=max(losses.values()),
                gross_exposure=gross / eq, var_95=-np.percentile((pnl / eq).dropna().to_numpy(), 5))


def best(fn, n: int) -> tuple[float, object]:
    ts, out = [], None
    for _ in range(n):
        t0 = time.perf_counter(); out = fn(); ts.append(time.perf_counter() - t0)
    return min(ts), out


def limits_bench(n: int) -> None:
    book = book_for(n, SETTINGS.risk)
    t_ours, ours = best(lambda: evaluate_limits(book, SETTINGS.risk), 20)
    t_base, base = best(lambda: baseline_limits(book, SETTINGS.risk), 5)
    for c in ours: assert math.isclose(c.value, base[c.name], rel_tol=1e-9, abs_tol=1e-12), (c.name, c.value,
                                                                                             base[c.name])
    print(f'{n:4d} positions  evaluate every limit: {t_ours * 1e3:7.2f} ms   baseline per-position pandas loop: '
          f'{t_base * 1e3:8.2f} ms'
          f'   speed-up {t_base / t_ours:5.1f}x   (figures equal)')


def breach_store(n: int, tmp: Path, name: str):
    "A store with `n` positions, their closes, and yesterday's equity; a risk manager whose history cache is warm."
    clock = FixedClock('2018-02-06 21:05')
    store = Store(f'sqlite:///{tmp / name}.db', clock=clock)
    closes, marks = universe(n)
    for t in closes: store.upsert_prices(t,
                                         pd.DataFrame(dict(open=closes[t], high=closes[t], low=closes[t],
                                                           close=closes[t], volume=1e6)), 'bench')
    pos = [Position(t, int(1_500_000 / n // closes[t].iloc[-2]) + 1, float(closes[t].iloc[-2]),
                    float(closes[t].iloc[-2])) for t in closes]
    cash = 1_000_000 - sum(p.quantity * p.avg_cost for p in pos)
    store.record_equity('PAPER', '2018-02-05 21:05', cash, 1_000_000.0)
    store.set_positions('PAPER', pos, clock.now())
    cfg = dataclasses.replace(SETTINGS,
                              risk=dataclasses.replace(SETTINGS.risk, auto_actions=False, max_gross_exposure_pct=10.0))
    rm = RiskManager(store, None, cfg, clock, account='PAPER')
    assert rm.check(marks).state.value == 'ACTIVE'          # warms the day's history cache, as a running monitor has
    rm.risk = dataclasses.replace(rm.risk, max_gross_exposure_pct=1.0)   # now the book is over its gross limit
    return store, rm, marks


def breach_bench(n: int, tmp: Path) -> None:
    store, rm, marks = breach_store(n, tmp, f'ours{n}')
    t0 = time.perf_counter()
    rep = rm.check(marks)
    journaled = len(rm.journal_action(rep.actions[0])[0])
    t_ours = time.perf_counter() - t0
    assert rep.state.value == 'REDUCING' and journaled == n
    store.close()
    store, rm, marks = breach_store(n, tmp, f'base{n}')
    t0 = time.perf_counter()
    rep = rm.check(marks)
    for d in store.risk_action(rep.actions[0])['preview']['orders']: store.journal_order(order_from_dict(d))
    t_base = time.perf_counter() - t0
    assert len(store.orders()) == n
    store.close()
    print(f'{n:4d} positions  breach -> all {n} action orders journaled: {t_ours * 1e3:7.1f} ms   '
          f'baseline one transaction per order: {t_base * 1e3:8.1f} ms   speed-up {t_base / t_ours:5.1f}x')


if __name__ == '__main__':
    for n in (50, 500): limits_bench(n)
    with tempfile.TemporaryDirectory() as d:
        for n in (50, 500): breach_bench(n, Path(d))
