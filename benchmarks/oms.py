"""Order-management throughput at any history size: orders per second through pre-trade checks, the journal and
PaperBroker, with 1,000 and with 10,000 orders already in the account's history (all of today's session, so the
broker holds every one of them), against the raw SQLite floor measured in the same run: one transaction holding one
order's journal rows (the order, its two events, its fill) through the sqlite3 module, on a connection made by the
store's own `make_engine` (so the same pragmas: WAL, synchronous=NORMAL, busy timeout, foreign keys).
It also prints what one order costs the database: SQL statements and transactions, counted through SQLAlchemy's events.

Aims (issue 10): >= 1,000 orders/s at both sizes, within 20% of each other; >= 0.25 of the floor.

Run: .venv/bin/python benchmarks/oms.py
"""
from __future__ import annotations
import tempfile, time
from datetime import datetime, timezone
from pathlib import Path
from tqdm.auto import tqdm
from trading_workbench.core.config import Settings
from trading_workbench.core.clock import FixedClock
from trading_workbench.core.types import Order
from trading_workbench.execution.broker import SyncBroker
from trading_workbench.execution.paper import PaperBroker
from trading_workbench.data.sources import BundledSource
from trading_workbench.execution.orders import OrderManager, limit_for
from trading_workbench.store.db import Store, T, make_engine

ROOT = Path(__file__).parents[1]
# the benchmark sends more orders than one day's limit allows
SETTINGS = Settings.from_text((ROOT / 'settings.ini').read_text(), env={'TWB_RISK_MAX_DAILY_TRADES': '1000000'}, root=ROOT)
TICKERS = ['AAPL', 'MSFT', 'JPM', 'XOM', 'KO', 'PG', 'PEP', 'WMT', 'INTC', 'CSCO']
PRICES = {t: float(BundledSource().history(t).close.iloc[-1]) for t in TICKERS}
NOW = datetime(2018, 2, 7, 21, tzinfo=timezone.utc)
N = 1000                                                     # orders measured at each size


def orders(tag: str, n: int):
    "Buys then sells of 5 shares, ticker by ticker: every order fills, the position never exceeds the limits."
    for i in range(n):
        t = TICKERS[i % len(TICKERS)]
        side = 'BUY' if (i // len(TICKERS)) % 2 == 0 else 'SELL'
        yield Order(f'{tag}-{i}', t, side, 5, limit_price=limit_for(side, PRICES[t]), run_id=tag)


def seed(store: Store, n: int) -> None:
    "Put `n` filled orders of today's session into the account's history: journal, events, fills and the paper book's rows."
    rows, events, fills, porders, pfills = [], [], [], [], []
    for i, o in enumerate(orders('hist', n)):
        px, coid, eid = o.limit_price, o.client_order_id, f'H{i:08d}'
        rows.append(dict(client_order_id=coid, run_id=o.run_id, ticker=o.ticker, side=o.side.value, quantity=5, order_type='LMT',
                         limit_price=px, tif='DAY', state='filled', broker_order_id=f'H{i}', filled_quantity=5, avg_fill_price=px,
                         reason='', adopted=False, created_at=NOW, updated_at=NOW))
        events += [dict(client_order_id=coid, time=NOW, state=s, message=s) for s in ('new', 'filled')]
        fill = dict(exec_id=eid, client_order_id=coid, ticker=o.ticker, side=o.side.value, quantity=5, price=px, commission=1.0,
                    time=NOW, broker_order_id=f'H{i}')
        fills.append(fill | dict(realized_pnl=0.0, recorded_at=NOW))
        pfills.append(fill | dict(account_id='PAPER'))
        porders.append(dict(account_id='PAPER', client_order_id=coid, ticker=o.ticker, side=o.side.value, quantity=5, order_type='LMT',
                            limit_price=px, tif='DAY', run_id=o.run_id, reason='', reduce_only=False, state='filled',
                            broker_order_id=f'H{i}', message='', updated=NOW, placed=NOW.date(), session=NOW.date()))
    with store.engine.begin() as c:
        for name, data in (('orders', rows), ('order_events', events), ('fills', fills), ('paper_orders', porders), ('paper_fills', pfills)):
            c.execute(T[name].insert(), data)
        c.execute(T['paper_accounts'].insert().values(account_id='PAPER', cash=SETTINGS.broker.initial_cash, realized_pnl=0.0,
                                                      exec_seq=n, session=NOW.date(), updated_at=NOW))


def rig(url: str, history: int):
    "A store at `url` with `history` orders of today's session already in the account, its PaperBroker and a started OrderManager."
    clock = FixedClock(NOW)
    store = Store(url, clock=clock)
    seed(store, history)
    sb = SyncBroker(PaperBroker(store, SETTINGS, clock))
    sb.connect(); sb.run(sb.broker.mark(PRICES))
    oms = OrderManager(sb, store, SETTINGS, clock)
    assert oms.start().ok
    return store, sb, oms


def oms_rates(tmp: str, sizes=(1_000, 10_000), chunk: int = 100) -> dict[int, tuple[float, int]]:
    "Orders/s through OrderManager + PaperBroker at each history size, measured in interleaved chunks (a busy machine slows both alike)."
    rigs = {n: rig(f'sqlite:///{tmp}/oms{n}.db', n) for n in sizes}
    books = {n: len(sb.broker.trackers) for n, (_, sb, _) in rigs.items()}      # orders the broker holds before the measured ones
    todo = {n: list(orders(f'run{n}', N)) for n in sizes}
    spent = dict.fromkeys(sizes, 0.0)
    for k in tqdm(range(0, N, chunk), desc='interleaved chunks', leave=False, disable=None):
        for n, (_, _, oms) in rigs.items():
            t0 = time.perf_counter()
            res = [oms.manage_order_lifecycle(o, PRICES[o.ticker]) for o in todo[n][k:k + chunk]]
            spent[n] += time.perf_counter() - t0
            assert all(r.status == 'COMPLETE' and r.reconciliation.ok for r in res), {r.status for r in res}
    out = {n: (N / spent[n], books[n], cost(*rigs[n])) for n in sizes}
    for store, sb, _ in rigs.values(): sb.close(); store.close()
    return out


def cost(store, sb, oms, n: int = 20):
    "SQL statements, write and read transactions per order, counted over `n` more orders (not timed)."
    with store.counting() as c:
        for o in orders(f'count{len(sb.broker.trackers)}', n): oms.manage_order_lifecycle(o, PRICES[o.ticker])
    return c.statements / n, c.write_transactions / n, c.read_transactions / n


def floor_rate(tmp: str) -> float:
    "Raw sqlite3: one transaction per order holding its journal rows (order, two events, fill), on a connection with the store's pragmas."
    eng = make_engine(f'sqlite:///{tmp}/floor.db')
    raw = eng.raw_connection()                       # the store's connect hook has set its pragmas (and autocommit: we BEGIN ourselves)
    con = raw.driver_connection
    con.execute('CREATE TABLE o (id TEXT PRIMARY KEY, ticker TEXT, side TEXT, qty INT, px REAL, state TEXT, filled INT, t TEXT)')
    con.execute('CREATE TABLE e (id INTEGER PRIMARY KEY, oid TEXT, t TEXT, state TEXT, msg TEXT)')
    con.execute('CREATE TABLE f (id TEXT PRIMARY KEY, oid TEXT, ticker TEXT, side TEXT, qty INT, px REAL, c REAL, t TEXT)')
    t0 = time.perf_counter()
    for o in orders('floor', N):
        con.execute('BEGIN IMMEDIATE')
        con.execute('INSERT INTO o VALUES (?,?,?,?,?,?,?,?)', (o.client_order_id, o.ticker, o.side.value, 5, o.limit_price, 'new', 0, 'now'))
        con.execute('INSERT INTO e (oid, t, state, msg) VALUES (?,?,?,?)', (o.client_order_id, 'now', 'new', 'journaled'))
        con.execute('INSERT INTO f VALUES (?,?,?,?,?,?,?,?)', ('x' + o.client_order_id, o.client_order_id, o.ticker, o.side.value, 5, o.limit_price, 1.0, 'now'))
        con.execute("UPDATE o SET state='filled', filled=5 WHERE id=?", (o.client_order_id,))
        con.execute('INSERT INTO e (oid, t, state, msg) VALUES (?,?,?,?)', (o.client_order_id, 'now', 'filled', 'final'))
        con.execute('COMMIT')
    rate = N / (time.perf_counter() - t0)
    prag = {p: con.execute(f'PRAGMA {p}').fetchone()[0] for p in ('journal_mode', 'synchronous')}
    raw.close(); eng.dispose()
    return rate, prag


def main():
    tmp = tempfile.mkdtemp()
    floor, prag = floor_rate(tmp)
    rates = oms_rates(tmp)
    (small, book_s, cost_s), (large, book_l, cost_l) = rates[1_000], rates[10_000]
    print(f'raw SQLite floor (one txn per order: order, 2 events, fill) : {floor:9.1f} orders/s   (journal_mode={prag["journal_mode"]}, synchronous={prag["synchronous"]}: 1 = NORMAL, as the store)')
    print(f'oms with  1,000 orders in history ({book_s:>6,} in the book) : {small:9.1f} orders/s   ratio to floor {small / floor:.3f}')
    print(f'oms with 10,000 orders in history ({book_l:>6,} in the book) : {large:9.1f} orders/s   ratio to floor {large / floor:.3f}')
    print(f'large / small history                                    : {large / small:9.3f}   (aim: within 0.8 .. 1.25)')
    for n, (st, w, r) in ((1_000, cost_s), (10_000, cost_l)):
        print(f'per order with {n:>6,} in history: {st:.1f} SQL statements (BEGINs included), {w:.1f} write and {r:.1f} read transactions')


if __name__ == '__main__':
    main()
