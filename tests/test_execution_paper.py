"PaperBroker and OrderManager on the bundled data: 50+ orders, partial fills, cancels, DAY expiry, restarts."
from __future__ import annotations
from pathlib import Path
from trading_workbench.core.config import Settings
from trading_workbench.core.clock import FixedClock
from trading_workbench.core.types import Order, OrderState, Signal, Provenance
from trading_workbench.execution.broker import SyncBroker, IllegalTransition, check_transition
from trading_workbench.execution.paper import PaperBroker, PaperCosts, BarMarket
from trading_workbench.data.sources import BundledSource
load_bundled = BundledSource().history
from trading_workbench.execution.orders import OrderManager
from trading_workbench.recovery.checkpoints import CheckpointManager
from trading_workbench.store.db import Store
import pytest

ROOT = Path(__file__).parents[1]
SETTINGS = Settings.from_text((ROOT / 'settings.ini').read_text(), env={}, root=ROOT)
TICKERS = ['AAPL', 'MSFT', 'JPM', 'XOM', 'KO', 'PG']
PROV = Provenance('test', '1')


def test_sixty_orders_through_order_manager(tmp_path):
    frames = {t: load_bundled(t) for t in TICKERS}
    days = frames['AAPL'].index[-10:]
    clock = FixedClock(days[0].replace(hour=21))
    store = Store(f'sqlite:///{tmp_path}/p.db', clock=clock)
    sb = SyncBroker(PaperBroker(store, SETTINGS, clock))
    oms = OrderManager(sb, store, SETTINGS, clock, CheckpointManager(store))
    assert oms.start().ok
    results = []
    for k, d in enumerate(days):
        clock.set(d.replace(hour=21))
        prices = {t: float(f.close.loc[d]) for t, f in frames.items()}
        # open on even days, close on odd ones: every signal moves the position, so every one is an order
        sigs = [Signal(t, 'BUY' if k % 2 == 0 else 'SELL', 0.3 + 0.1 * ((k + i) % 7), 0.2, 0.01, 5, prices[t],
                       clock.now(), PROV)
                for i, t in enumerate(TICKERS)]
        results += oms.execute(sigs, prices, f'run-{d.date()}')
    assert len(results) == 60
    assert all(r.status == 'COMPLETE' and r.reconciliation.ok for r in results), [r for r in results
                                                                                  if r.status != 'COMPLETE']
    assert store.positions('PAPER') == []   # the last day (odd) closed every long
    assert all(r.execution.state is OrderState.FILLED for r in results)
    b = sb.broker
    assert {p.ticker: p.quantity for p in store.positions('PAPER')} == {t: h.quantity for t, h in b.holdings.items()
                                                                        if h.quantity}
    journal = store.orders()
    assert len(journal) == 60 and sum(r['filled_quantity'] for r in journal) == sum(f.quantity for f in store.fills())
    assert len(CheckpointManager(store).list('order_execution', limit=100)) == 60
    sb.close()


def test_fifty_orders_against_bars_partial_cancel_expire_and_restart(tmp_path):
    frames = {t: load_bundled(t) for t in TICKERS}
    days = frames['AAPL'].index[-12:]
    clock = FixedClock(days[0].replace(hour=21))
    store = Store(f'sqlite:///{tmp_path}/b.db', clock=clock)
    thin = PaperCosts(max_volume_participation=0.00001)
    pb = PaperBroker(store, SETTINGS, clock, market=BarMarket(frames), costs=thin)
    sb = SyncBroker(pb)
    sb.connect()
    expect = {}
    for k, d in enumerate(days[:-1]):
        clock.set(d.replace(hour=21))
        for i, t in enumerate(TICKERS[:5]):
            close = float(frames[t].close.loc[d])
            nxt = frames[t].loc[days[k + 1]]
            kind = (k + i) % 5
            cid = f'b-{k}-{t}'
            if kind == 0: o, exp = Order(cid, t, 'BUY', 10, order_type='MKT'), OrderState.FILLED
            elif kind == 1: o, exp = Order(cid, t, 'BUY', 10,
                                           limit_price=round(float(nxt.high) * 1.01, 2)), OrderState.FILLED
            elif kind == 2: o, exp = Order(cid, t, 'BUY', 10,
                                           limit_price=round(float(nxt.low) * 0.98, 2)), OrderState.EXPIRED
            elif kind == 3:  # bigger than the bar allows: partial, then expired at the close
                o, exp = Order(cid, t, 'BUY', int(nxt.volume * 0.00001) + 50, order_type='MKT'), OrderState.EXPIRED
            else: o, exp = Order(cid, t, 'BUY', 10, limit_price=round(close * 0.5, 2)), OrderState.CANCELLED
            assert sb.submit(o).state is OrderState.SUBMITTED
            expect[cid] = (exp, o)
            if kind == 4: assert sb.cancel(cid).state is OrderState.CANCELLED
        clock.set(days[k + 1].replace(hour=21))
        for cid in [c for c in expect if c.startswith(f'b-{k}-')]:
            exp, o = expect[cid]
            # finished yesterday: the broker forgets it on the new session, as IB does
            if exp is OrderState.CANCELLED: continue
            s = sb.wait(cid, 1)
            assert s.state is exp, (cid, s)
            if exp is OrderState.EXPIRED and o.order_type.value == 'MKT': assert 0 < s.filled_quantity < o.quantity
            if exp is OrderState.FILLED: assert s.filled_quantity == o.quantity
    assert len(expect) == 55
    # the account survives a restart exactly
    pb2 = PaperBroker(store, SETTINGS, clock, market=BarMarket(frames), costs=thin)
    assert (pb2.cash, pb2._positions(), pb2.realized_pnl) == (pb.cash, pb._positions(), pb.realized_pnl)
    sb.close()


def test_illegal_transition_and_duplicate_submit(tmp_path):
    with pytest.raises(IllegalTransition): check_transition('x', OrderState.FILLED, OrderState.SUBMITTED)
    clock = FixedClock('2018-02-07 21:00')
    store = Store(f'sqlite:///{tmp_path}/d.db', clock=clock)
    with SyncBroker(PaperBroker(store, SETTINGS, clock)) as sb:
        sb.connect(); sb.run(sb.broker.mark({'AAPL': 159.54}))
        o = Order('dup-1', 'AAPL', 'BUY', 5, order_type='MKT')
        a, b = sb.submit(o), sb.submit(o)
        assert a == b and len(sb.executions()) == 1


def test_an_order_the_broker_lost_is_unknown_and_blocks_its_ticker(tmp_path):
    clock = FixedClock('2018-02-07 21:00')
    store = Store(f'sqlite:///{tmp_path}/r.db', clock=clock)
    store.journal_order(Order('ghost-1', 'AAPL', 'BUY', 5, limit_price=160.0), OrderState.SUBMITTED,
                        broker_order_id='X1')
    with SyncBroker(PaperBroker(store, SETTINGS, clock)) as sb:
        oms = OrderManager(sb, store, SETTINGS, clock)
        rep = oms.start()
        # journaled today, unknown to the broker
        assert rep.ok and rep.unknown == ['ghost-1'] and 'still unknown' in rep.findings[0]
        assert store.order('ghost-1')['state'] == 'unknown' and 'ghost-1 unresolved' in ' '.join(
            store.alerts()['message']
        )
        sb.run(sb.broker.mark({'AAPL': 160.0, 'MSFT': 90.0}))
        r = oms.manage_order_lifecycle(Order('new-1', 'AAPL', 'SELL', 5, 'MKT'), 160.0)
        # its ticker takes no new order
        assert (r.status, r.reasons) == ('REJECTED', ('unresolved_order',))
        assert oms.manage_order_lifecycle(Order('new-2', 'MSFT', 'BUY', 5, limit_price=90.0)).status == 'COMPLETE'


def test_paper_account_rows_round_trip_on_sqlite_and_postgresql(db_url):
    "The account in rows (schema 0003) on both databases: orders, stops, fills, holdings and marks survive a restart."
    clock = FixedClock('2018-02-05 21:00')
    store = Store(db_url, clock=clock)
    try:
        aapl = load_bundled('AAPL')
        with SyncBroker(PaperBroker(store, SETTINGS, clock, market=BarMarket({'AAPL': aapl}))) as sb:
            sb.connect()
            sb.submit(Order('r-buy', 'AAPL', 'BUY', 100, 'MKT'))
            sb.submit(Order('r-stop', 'AAPL', 'SELL', 100, 'STP', tif='GTC', stop_price=140.0, reduce_only=True))
            clock.set('2018-02-06 21:00')
            assert sb.wait('r-buy', 0).state is OrderState.FILLED
            sb.modify('r-stop', stop_price=150.0)
            before = (sb.broker.cash, sb.broker._positions(), sb.order_status('r-stop'), sb.order_status('r-buy'))
        pb = PaperBroker(store, SETTINGS, clock, market=BarMarket({'AAPL': aapl}))
        assert (pb.cash, pb._positions(), pb.trackers['r-stop'].snapshot(), pb.trackers['r-buy'].snapshot()) == before
        assert pb.open_ids == {'r-stop'} and pb.trackers['r-stop'].order.reduce_only
    finally:
        store.close()
