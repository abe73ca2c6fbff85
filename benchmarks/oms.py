"""Order-management throughput at any history size: orders per second through pre-trade checks, the journal and
PaperBroker, with 1,000 and with 10,000 orders already in the account's history (all of today's session, so the
broker holds every one of them), against the raw SQLite floor measured in the same run: one transaction holding one
order's journal rows (the order, its two events, its fill) through the sqlite3 module, on a connection made by the
store's own `make_engine` (so the same pragmas: WAL, synchronous=NORMAL, busy timeout, foreign keys).
It also prints what one order costs the database: SQL statements and transactions, counted through SQLAlchemy's events;
the order path's own SQL replayed through raw sqlite3 (its database floor); and the pages each writes to the WAL, which
is what a commit's cost grows with. The last line says how much of the time a ratio of 0.25 allows the SQL alone takes.

Aims (issue 10): >= 1,000 orders/s at both sizes, within 20% of each other; >= 0.25 of the floor.

Run: .venv/bin/python benchmarks/oms.py
"""
from __future__ import annotations
import os, re, tempfile, time
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
from sqlalchemy import event
from trading_workbench.store.db import Store, T, make_engine

ROOT = Path(__file__).parents[1]
# the benchmark sends more orders than one day's limit allows
SETTINGS = Settings.from_text((ROOT / 'settings.ini').read_text(), env={'TWB_RISK_MAX_DAILY_TRADES': '1000000'},
                              root=ROOT)
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
    """Put `n` filled orders of today's session into the account's history: journal, events,
    fills and the paper book's rows."""
    rows, events, fills, porders, pfills = [], [], [], [], []
    for i, o in enumerate(orders('hist', n)):
        px, coid, eid = o.limit_price, o.client_order_id, f'H{i:08d}'
        rows.append(dict(client_order_id=coid, run_id=o.run_id, ticker=o.ticker, side=o.side.value, quantity=5,
                         order_type='LMT',
                         limit_price=px, tif='DAY', state='filled', broker_order_id=f'H{i}', filled_quantity=5,
                         avg_fill_price=px, reason='', adopted=False, created_at=NOW, updated_at=NOW))
        events += [dict(client_order_id=coid, time=NOW, state=s, message=s) for s in ('new', 'filled')]
        fill = dict(exec_id=eid, client_order_id=coid, ticker=o.ticker, side=o.side.value, quantity=5, price=px,
                    commission=1.0, time=NOW, broker_order_id=f'H{i}')
        fills.append(fill | dict(realized_pnl=0.0, recorded_at=NOW))
        pfills.append(fill | dict(account_id='PAPER'))
        porders.append(dict(account_id='PAPER', client_order_id=coid, ticker=o.ticker, side=o.side.value, quantity=5,
                            order_type='LMT',
                            limit_price=px, tif='DAY', run_id=o.run_id, reason='', reduce_only=False, state='filled',
                            broker_order_id=f'H{i}', message='', updated=NOW, placed=NOW.date(), session=NOW.date()))
    with store.engine.begin() as c:
        for name, data in (('orders', rows), ('order_events', events), ('fills', fills), ('paper_orders', porders),
                           ('paper_fills', pfills)):
            c.execute(T[name].insert(), data)
        c.execute(T['paper_accounts'].insert().values(account_id='PAPER', cash=SETTINGS.broker.initial_cash,
                                                      realized_pnl=0.0, exec_seq=n, session=NOW.date(), updated_at=NOW))


def rig(url: str, history: int):
    """A store at `url` with `history` orders of today's session already in the account, its PaperBroker
    and a started OrderManager."""
    clock = FixedClock(NOW)
    store = Store(url, clock=clock)
    seed(store, history)
    sb = SyncBroker(PaperBroker(store, SETTINGS, clock))
    sb.connect(); sb.run(sb.broker.mark(PRICES))
    oms = OrderManager(sb, store, SETTINGS, clock)
    assert oms.start().ok
    return store, sb, oms


def floor_rig(tmp: str):
    """Raw sqlite3 on a connection made by the store's `make_engine` (its connect hook sets the store's pragmas, and
    autocommit: we BEGIN)."""
    eng = make_engine(f'sqlite:///{tmp}/floor.db')
    raw = eng.raw_connection()
    con = raw.driver_connection
    con.execute('CREATE TABLE o (id TEXT PRIMARY KEY, ticker TEXT, side TEXT, qty INT, px REAL, state TEXT, filled '
                'INT, t TEXT)')
    con.execute('CREATE TABLE e (id INTEGER PRIMARY KEY, oid TEXT, t TEXT, state TEXT, msg TEXT)')
    con.execute('CREATE TABLE f (id TEXT PRIMARY KEY, oid TEXT, ticker TEXT, side TEXT, qty INT, px REAL, c REAL, t '
                'TEXT)')
    def send(batch):
        "One transaction per order holding its journal rows: the order, two events, the fill, the final state."
        for o in batch:
            con.execute('BEGIN IMMEDIATE')
            con.execute('INSERT INTO o VALUES (?,?,?,?,?,?,?,?)',
                        (o.client_order_id, o.ticker, o.side.value, 5, o.limit_price, 'new', 0, 'now'))
            con.execute('INSERT INTO e (oid, t, state, msg) VALUES (?,?,?,?)',
                        (o.client_order_id, 'now', 'new', 'journaled'))
            con.execute('INSERT INTO f VALUES (?,?,?,?,?,?,?,?)',
                        ('x' + o.client_order_id, o.client_order_id, o.ticker, o.side.value, 5, o.limit_price, 1.0,
                         'now'))
            con.execute("UPDATE o SET state='filled', filled=5 WHERE id=?", (o.client_order_id,))
            con.execute('INSERT INTO e (oid, t, state, msg) VALUES (?,?,?,?)',
                        (o.client_order_id, 'now', 'filled', 'final'))
            con.execute('COMMIT')
    facts = {p: con.execute(f'PRAGMA {p}').fetchone()[0] for p in ('journal_mode', 'synchronous')}
    facts |= {name: con.execute('SELECT count(*) FROM sqlite_master WHERE type = ?', (k,)).fetchone()[0]
              for name, k in (('tables', 'table'), ('indexes', 'index'))}
    pages = lambda n: wal_pages(con, f'{tmp}/floor.db', lambda: send(list(orders('pages', n)))) / n
    return send, facts, pages, lambda: (raw.close(), eng.dispose())


def wal_pages(con, path: str, work) -> int:
    """Database pages `work` writes to the WAL (checkpoints held off meanwhile): what a commit costs grows with
    them."""
    con.execute('PRAGMA wal_checkpoint(TRUNCATE)')
    auto = con.execute('PRAGMA wal_autocheckpoint').fetchone()[0]
    con.execute('PRAGMA wal_autocheckpoint=0')
    try: work()
    finally: con.execute(f'PRAGMA wal_autocheckpoint={auto}')
    size = con.execute('PRAGMA page_size').fetchone()[0]
    return (os.path.getsize(path + '-wal') - 32) // (24 + size)          # a 32-byte header, then frames


def rates(tmp: str, sizes=(1_000, 10_000), chunk: int = 100) -> dict:
    """Orders/s (wall and CPU) of the floor and of OrderManager + PaperBroker at each history size, in interleaved
    chunks (a busy machine slows all alike)."""
    rigs = {n: rig(f'sqlite:///{tmp}/oms{n}.db', n) for n in sizes}
    # orders the broker holds before the measured ones
    books = {n: len(sb.broker.trackers) for n, (_, sb, _) in rigs.items()}
    floor, facts, floor_pages, close = floor_rig(tmp)
    def run_oms(oms):
        def send(batch):
            res = [oms.manage_order_lifecycle(o, PRICES[o.ticker]) for o in batch]
            assert all(r.status == 'COMPLETE' and r.reconciliation.ok for r in res), {r.status for r in res}
        return send
    runs = {'floor': floor, **{n: run_oms(oms) for n, (_, _, oms) in rigs.items()}}
    todo = {k: list(orders(f'run{k}', N)) for k in runs}
    wall, cpu = dict.fromkeys(runs, 0.0), dict.fromkeys(runs, 0.0)
    for k in tqdm(range(0, N, chunk), desc='interleaved chunks', leave=False, disable=None):
        for name, send in runs.items():
            w0, c0 = time.perf_counter(), time.process_time()
            send(todo[name][k:k + chunk])
            wall[name] += time.perf_counter() - w0; cpu[name] += time.process_time() - c0
    out = {name: (N / wall[name], N / cpu[name]) for name in runs}
    costs = {n: cost(*rigs[n]) for n in sizes}
    facts['pages'] = floor_pages(200)
    close()
    for store, sb, _ in rigs.values(): sb.close(); store.close()
    return out, books, costs, facts


def design_floor(tmp: str, n: int = N) -> tuple[float, float, list[str], int]:
    """Orders/s of the exact SQL our order path issues (statements, parameters, commits), recorded once and replayed
    through raw sqlite3; the database pages an order writes, the tables it writes and their indexes."""
    store, sb, oms = rig(f'sqlite:///{tmp}/replay.db', 1_000)
    copies = [make_engine(f'sqlite:///{tmp}/replay_{k}.db') for k in ('timed', 'pages')]
    raws, src = [eng.raw_connection() for eng in copies], store.engine.raw_connection()
    for raw in raws: src.driver_connection.backup(raw.driver_connection)     # the same starting state
    src.close()
    log = []
    def stmt(conn, cursor, sql, params, context, many): log.append((sql, params, many))
    event.listen(store.engine, 'before_cursor_execute', stmt)
    event.listen(store.engine, 'commit', lambda conn: log.append(None))
    for o in orders('replay', n): oms.manage_order_lifecycle(o, PRICES[o.ticker])
    sb.close(); store.close()
    def replay(con):
        for item in log:
            if item is None: con.execute('COMMIT'); continue
            sql, params, many = item
            (con.executemany if many else con.execute)(sql, params).fetchall()
    t0 = time.perf_counter()
    replay(raws[0].driver_connection)
    rate = n / (time.perf_counter() - t0)
    con = raws[1].driver_connection
    pages = wal_pages(con, f'{tmp}/replay_pages.db', lambda: replay(con))
    written = sorted({m.group(1) for item in log if item
                      for m in [re.match(r'(?:INSERT INTO|UPDATE|DELETE FROM) (\w+)', item[0])] if m})
    indexes = con.execute(f"SELECT count(*) FROM sqlite_master WHERE type = 'index' AND tbl_name IN "
                          f"({','.join('?' * len(written))})", written).fetchone()[0]
    for raw, eng in zip(raws, copies): raw.close(); eng.dispose()
    return rate, pages / n, written, indexes


def cost(store, sb, oms, n: int = 20) -> tuple[dict, float, float]:
    """Per order over `n` more orders (not timed): how many had how many SQL statements, and write and
    read transactions per order."""
    per, w, r = {}, 0, 0
    for o in orders(f'count{len(sb.broker.trackers)}', n):
        with store.counting() as c: oms.manage_order_lifecycle(o, PRICES[o.ticker])
        per[c.statements] = per.get(c.statements, 0) + 1
        w, r = w + c.write_transactions, r + c.read_transactions
    return dict(sorted(per.items(), reverse=True)), w / n, r / n


def main():
    tmp = tempfile.mkdtemp()
    r, books, costs, facts = rates(tmp)
    design, pages, written, indexes = design_floor(tmp)
    (fw, fc), (sw, sc), (lw, lc) = r['floor'], r[1_000], r[10_000]
    print(f'raw SQLite floor, one txn per order (order, 2 events, fill): {fw:8.1f} orders/s wall, {fc:8.1f} per CPU-s '
          f'(journal_mode={facts["journal_mode"]}, synchronous={facts["synchronous"]}: 1 = NORMAL, as the store)')
    for n, (w, c) in ((1_000, (sw, sc)), (10_000, (lw, lc))):
        print(f'oms with {n:>6,} orders in history ({books[n]:>6,} in the book): {w:8.1f} orders/s wall, {c:8.1f} per '
              f'CPU-s   '
              f'ratio to floor {w / fw:.3f} wall, {c / fc:.3f} CPU')
    print(f'10,000 / 1,000 history: {lw / sw:.3f} wall, {lc / sc:.3f} CPU   (aim: within 0.8 .. 1.25)')
    stmts = max(costs[1_000][0])
    print(f'the order path\'s own SQL ({stmts} statements, 1 commit per order) replayed through raw sqlite3: '
          f'{design:8.1f} orders/s wall '
          f'(its database floor; {design / r[1_000][0]:.1f}x the order path, {design / fw:.3f} of the floor above)')
    print(f'database pages written per order (a commit\'s cost grows with them): floor {facts["pages"]:.1f}, the order '
          f'path {pages:.1f}: it writes {len(written)} tables with {indexes} indexes ({", ".join(written)}), the '
          f'floor {facts["tables"]} tables with {facts["indexes"]} (their text keys\')')
    budget, sql = 1e6 / (0.25 * fw), 1e6 / design
    print(f'a ratio of 0.25 allows {budget:.0f} us per order; the order path\'s SQL alone takes {sql:.0f} us, leaving '
          f'{budget - sql:.0f} us for all its Python (checks, journal code, the paper broker), which takes '
          f'{1e6 / sw - sql:.0f} us today')
    for n, (st, w, rd) in costs.items():
        spread = ', '.join(f'{k} statements: {v} orders' for k, v in st.items())
        print(f'per order with {n:>6,} in history: {w:.1f} write and {rd:.1f} read transactions; SQL statements (BEGIN '
              f'included) '
              f'{spread} (one fewer when an order leaves the book flat: no position row to insert)')


if __name__ == '__main__':
    main()
