"""Schema 0012: the order path's text-keyed tables become WITHOUT ROWID on SQLite, in place, keeping every row, every
index and the events' reference to their order; PostgreSQL is left as it was."""
from __future__ import annotations
import importlib.util
from pathlib import Path
import sqlalchemy as sa

from trading_workbench.core.types import OrderState, Position
from trading_workbench.store.db import HEAD, Store, T, make_engine, migrate

spec = importlib.util.spec_from_file_location('bench_oms', Path(__file__).parents[1] / 'benchmarks' / 'oms.py')
bench = importlib.util.module_from_spec(spec); spec.loader.exec_module(bench)
COMPACT = ['equity', 'fills', 'orders', 'paper_accounts', 'paper_fills', 'paper_holdings', 'paper_marks',
           'paper_orders', 'positions']


def layout(eng: sa.Engine) -> tuple[list[str], list[str]]:
    "(tables WITHOUT ROWID, named indexes) of an SQLite database."
    with eng.connect() as c:
        tables = sorted(n for n, s in c.exec_driver_sql("SELECT name, sql FROM sqlite_master WHERE type = 'table'")
                        if s.rstrip().upper().endswith('WITHOUT ROWID'))
        named = "SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
        indexes = sorted(n for n, in c.exec_driver_sql(named))
    return tables, indexes


def test_0012_keeps_every_row_index_and_reference(tmp_path):
    url = f"sqlite:///{tmp_path / 'store.db'}"
    eng = make_engine(url)
    assert migrate(eng, '0011') == '0011'
    before_tables, before_indexes = layout(eng)
    eng.dispose()
    store = Store(url, migrate_schema=False)
    bench.seed(store, 50)                                      # journal, events, fills and the paper book's rows
    # and a row in every other table the migration rebuilds, so that each keeps something to lose
    store.set_positions('PAPER', [Position('KO', 10, 45.0)], bench.NOW)
    store.record_equity('PAPER', bench.NOW, 99_550.0, 100_000.0)
    with store.engine.begin() as c:
        c.execute(T['paper_holdings'].insert().values(account_id='PAPER', ticker='KO', quantity=10, avg_cost=45.0))
        c.execute(T['paper_marks'].insert().values(account_id='PAPER', ticker='KO', price=45.0, volume=1e6))
    with store.engine.connect() as c:
        counts = {t: c.exec_driver_sql(f'SELECT count(*) FROM {t}').scalar() for t in [*COMPACT, 'order_events']}
        first = c.exec_driver_sql("SELECT * FROM orders WHERE client_order_id = 'hist-7'").one()
    assert all(counts.values()), counts
    store.close()
    eng = make_engine(url)
    assert before_tables == [] and migrate(eng) == HEAD
    tables, indexes = layout(eng)
    assert tables == COMPACT and indexes == before_indexes
    with eng.connect() as c:
        assert {t: c.exec_driver_sql(f'SELECT count(*) FROM {t}').scalar() for t in counts} == counts
        assert c.exec_driver_sql("SELECT * FROM orders WHERE client_order_id = 'hist-7'").one() == first
        assert c.exec_driver_sql('PRAGMA foreign_key_check').all() == []
        fk = c.exec_driver_sql('PRAGMA foreign_key_list(order_events)').all()
        assert [(r[2], r[3], r[4]) for r in fk] == [('orders', 'client_order_id', 'client_order_id')]
    eng.dispose()
    store, sb, oms = bench.rig(url.replace('store.db', 'fresh.db'), 10)        # the order path on the new layout
    try:
        o = next(bench.orders('layout', 1))
        assert oms.manage_order_lifecycle(o, bench.PRICES[o.ticker]).status == 'COMPLETE'
        events = [e['state'] for e in store.order_events(o.client_order_id)]
        assert events == [OrderState.NEW.value, OrderState.FILLED.value]
    finally:
        sb.close(); store.close()


def test_0012_leaves_postgresql_alone(fresh_pg_url):
    eng = make_engine(fresh_pg_url)
    assert migrate(eng, '0011') == '0011'
    count = "SELECT count(*) FROM pg_indexes WHERE schemaname = 'public'"
    with eng.connect() as c: before = c.exec_driver_sql(count).scalar()
    assert migrate(eng) == HEAD
    with eng.connect() as c: after = c.exec_driver_sql(count).scalar()
    assert after == before
    eng.dispose()
