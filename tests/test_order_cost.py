"""What one order costs the database is constant as the account's history grows (counted, not timed), and a failed
commit of an order's unit of work leaves the paper book in memory, its rows and the journal agreeing."""
from __future__ import annotations
import importlib.util
from pathlib import Path
import pytest
import sqlalchemy as sa

from trading_workbench.core.types import OrderState
from trading_workbench.execution.paper import PaperBroker

spec = importlib.util.spec_from_file_location('bench_oms', Path(__file__).parents[1] / 'benchmarks' / 'oms.py')
bench = importlib.util.module_from_spec(spec); spec.loader.exec_module(bench)

# the design: ONE transaction per order holding its reads (the order's row, the open orders and the trading state, all
# by index) and all its rows (order, 2 events, fill, positions, equity; the paper book's account, order, fill and
# holding). SQLite: BEGIN IMMEDIATE + 3 reads + 12 writes (the fill's insert says whether it was new: no lookup first);
# PostgreSQL has no BEGIN statement.
DESIGN = {'sqlite': (16, 1, 0), 'postgresql': (15, 1, 0)}     # (statements, write transactions, read transactions)


def per_order(store, sb, oms, tag: str, n: int = 10) -> list[tuple[int, int, int]]:
    "(statements, write transactions, read transactions) of each of `n` orders, counted one by one."
    out = []
    for o in bench.orders(tag, n):
        with store.counting() as c: r = oms.manage_order_lifecycle(o, bench.PRICES[o.ticker])
        assert r.status == 'COMPLETE' and r.reconciliation.ok, r.reasons
        out.append((c.statements, c.write_transactions, c.read_transactions))
    return out


def check_design(url: str, history: int, dialect: str) -> None:
    store, sb, oms = bench.rig(url, history)
    try: costs = per_order(store, sb, oms, f'cost{history}')
    finally: sb.close(); store.close()
    assert set(costs) == {DESIGN[dialect]}, (dialect, history, costs)


@pytest.mark.parametrize('history', [100, 2_000])
def test_cost_per_order_is_the_design_at_any_history_sqlite(tmp_path, history):
    check_design(f"sqlite:///{tmp_path / 'store.db'}", history, 'sqlite')


@pytest.mark.parametrize('history', [100, 2_000])
def test_cost_per_order_is_the_design_at_any_history_postgresql(fresh_pg_url, history):
    check_design(fresh_pg_url, history, 'postgresql')


def book(pb: PaperBroker) -> tuple:
    "What the paper broker holds in memory: cash, sequence, holdings, orders and their fills."
    return (round(pb.cash, 6), pb.exec_seq,
            {t: (h.quantity, round(h.avg_cost, 6)) for t, h in pb.holdings.items() if h.quantity},
            {k: (tr.state.value, tr.snapshot().filled_quantity, sorted(tr.fills)) for k, tr in pb.trackers.items()})


def test_failed_commit_leaves_memory_and_store_agreeing(tmp_path):
    store, sb, oms = bench.rig(f"sqlite:///{tmp_path / 'store.db'}", 100)
    try:
        o = next(bench.orders('fail', 1))
        before, trades = book(sb.broker), oms._trades_today
        with store.engine.begin() as c:     # the last write of the order's unit fails, as a full disk would
            c.exec_driver_sql("CREATE TRIGGER no_equity BEFORE INSERT ON equity BEGIN SELECT RAISE(ABORT, 'disk "
                              "full'); END")
        with pytest.raises(sa.exc.IntegrityError, match='disk full'): oms.manage_order_lifecycle(o,
                                                                                                 bench.PRICES[o.ticker])
        # nothing of it was stored
        assert store.order(o.client_order_id) is None and store.fills(o.client_order_id) == []
        # memory = rows = as before
        assert book(sb.broker) == before == book(PaperBroker(store, bench.SETTINGS, oms.clock))
        assert oms._trades_today == trades and o.client_order_id not in oms._fills
        with store.engine.begin() as c: c.exec_driver_sql('DROP TRIGGER no_equity')
        # sent again: exactly once
        r = oms.manage_order_lifecycle(o, bench.PRICES[o.ticker])
        assert r.status == 'COMPLETE' and r.reconciliation.ok, r.reasons
        assert (
            store.order(o.client_order_id)['state'] == OrderState.FILLED.value
            and len(store.fills(o.client_order_id)) == 1
        )
        assert book(sb.broker) == book(PaperBroker(store, bench.SETTINGS,
                                                   oms.clock)) and oms._trades_today == trades + 1
    finally:
        sb.close(); store.close()


@pytest.mark.parametrize('where', ['file', 'memory'])
def test_a_gate_reading_the_store_works_inside_the_unit(tmp_path, where):
    """The risk manager's gate reads the trading state and controls through the readers' engine
    while the order's unit is open."""
    from trading_workbench.execution.orders import OrderManager
    from trading_workbench.risk.manager import RiskGate
    store, sb, oms = bench.rig(f"sqlite:///{tmp_path / 'store.db'}" if where == 'file' else 'sqlite://', 10)
    try:
        gated = OrderManager(sb, store, bench.SETTINGS, oms.clock, gate=RiskGate(store))
        assert gated.start().ok
        o = next(bench.orders('gated', 1))
        with store.counting() as c: r = gated.manage_order_lifecycle(o, bench.PRICES[o.ticker])
        assert r.status == 'COMPLETE' and r.reconciliation.ok, r.reasons
        assert store.order(o.client_order_id)['state'] == OrderState.FILLED.value
        # a file: one write transaction (the gate's reads are its own); in memory, one connection per thread: no unit
        assert c.write_transactions == (1 if where == 'file' else 6), c
    finally:
        sb.close(); store.close()
