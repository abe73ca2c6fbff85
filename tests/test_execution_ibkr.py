"""IBKRBroker over ib_async against the TWS-protocol test server: 50+ orders, partial fills,
cancels, timeouts and faults."""
from __future__ import annotations
import asyncio, sys
from pathlib import Path
import pytest
from trading_workbench.core.config import Settings
from trading_workbench.core.clock import SystemClock
from trading_workbench.core.types import Order, OrderState
from trading_workbench.execution.broker import NotConnected
from trading_workbench.execution.ibkr import IBKRBroker

sys.path.insert(0, str(Path(__file__).parent))
from trading_workbench.testing.tws_server import TWSServer, Plan  # noqa: E402

ROOT = Path(__file__).parents[1]
SETTINGS = Settings.from_text((ROOT / 'settings.ini').read_text(), env={}, root=ROOT)
PRICES = {'AAPL': 159.54, 'MSFT': 89.61, 'JPM': 110.2, 'XOM': 82.9, 'KO': 45.8}


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 60))


async def started(server_version=178, **kw):
    srv = TWSServer(server_version=server_version, prices=PRICES, **kw)
    port = await srv.start()
    b = IBKRBroker(SETTINGS, SystemClock(), port=port, ack_timeout=0.5, reconnect_attempts=6, reconnect_max_wait=0.3)
    await b.connect()
    return srv, b


def order(i, ticker='AAPL', side='BUY', qty=10, run='t'):
    px = PRICES[ticker]
    return Order(f'{run}-{ticker}-{side}-{i}', ticker, side, qty,
                 limit_price=round(px * (1.001 if side == 'BUY' else 0.999), 2), run_id=run)


@pytest.mark.parametrize('sv', [176, 177, 178])
def test_handshake_and_startup_sync(sv):
    async def go():
        srv, b = await started(sv)
        try:
            assert b.is_connected() and b.account_id == 'DU1234567'
            acct = await b.account()
            assert acct.equity == pytest.approx(1_000_000.0)
            kinds = {int(m[0]) for m in srv.received}
            # startApi, positions, open & completed orders, account, executions
            assert {71, 61, 5, 99, 6, 7} <= kinds
            snap = await b.submit(order(1))
            snap = await b.wait(snap.client_order_id, 5)
            assert (
                snap.state is OrderState.FILLED and snap.filled_quantity == 10 and snap.commission == pytest.approx(1.0)
            )
        finally:
            await b.disconnect(); await srv.stop()
    run(go())


# -- fault injection, straight on the broker ----------------------------------------------------------------

def scenario(fn, sv=178, **kw):
    async def go():
        srv, b = await started(sv, **kw)
        try: await fn(srv, b)
        finally:
            await b.disconnect(); await srv.stop()
    run(go())


def test_drop_mid_order_reconnects_and_finds_the_fill():
    async def fn(srv, b):
        o = order(1)
        srv.faults.drop_after_ack.add(o.client_order_id)
        await b.submit(o)
        assert await b.until_connected(10)
        s = await b.wait(o.client_order_id, 10)
        assert s.state is OrderState.FILLED and s.filled_quantity == 10 and s.commission == pytest.approx(1.0)
        assert srv.connections >= 2 and srv.place_count == 1            # re-dialled, never re-sent
    scenario(fn)


def test_drop_after_first_partial_fill():
    async def fn(srv, b):
        o = order(2, qty=30)
        srv.plans[o.client_order_id] = Plan(parts=3)
        srv.faults.drop_after_first_fill.add(o.client_order_id)
        await b.submit(o)
        await asyncio.sleep(0.05)
        assert await b.until_connected(10)
        s = await b.wait(o.client_order_id, 10)
        assert (s.state, s.filled_quantity, len(b.trackers[o.client_order_id].fills)) == (OrderState.FILLED, 30, 3)
        assert srv.place_count == 1
    scenario(fn)


def test_duplicate_status_and_partial_fills_count_once():
    async def fn(srv, b):
        srv.faults.duplicate_status = True
        o = order(3, 'MSFT', qty=40)
        srv.plans[o.client_order_id] = Plan(parts=4)
        events = []
        b.events.subscribe(events.append)
        await b.submit(o)
        s = await b.wait(o.client_order_id, 10)
        assert (s.state, s.filled_quantity, len(b.trackers[o.client_order_id].fills)) == (OrderState.FILLED, 40, 4)
        assert s.commission == pytest.approx(4.0)
        fills = [e for e in events if type(e).__name__ == 'FillEvent']
        assert len(fills) == 4
    scenario(fn)


def test_commission_reports_out_of_order_are_recovered():
    async def fn(srv, b):
        srv.faults.commission_first = True
        o = order(4, 'JPM', qty=20)
        srv.plans[o.client_order_id] = Plan(parts=2)
        await b.submit(o)
        s = await b.wait(o.client_order_id, 10)
        assert s.state is OrderState.FILLED and s.commission == pytest.approx(2.0)
        assert all(f.commission == pytest.approx(1.0) for f in b.trackers[o.client_order_id].fills.values())
    scenario(fn)


def test_rejection_is_typed():
    async def fn(srv, b):
        o = order(5, 'XOM')
        srv.plans[o.client_order_id] = Plan(reject='insufficient margin')
        s = await b.submit(o)
        s = await b.wait(o.client_order_id, 5)
        assert (s.state, s.error_code, s.filled_quantity) == (OrderState.REJECTED, 201, 0)
        assert 'insufficient margin' in s.message
    scenario(fn)


def test_lower_next_valid_id_after_reconnect_is_retried_with_fresh_id():
    async def fn(srv, b):
        for i in range(3):
            s = await b.submit(order(10 + i))
            await b.wait(s.client_order_id, 5)
        srv.faults.next_valid_id_on_reconnect = 1
        srv.drop_all()
        await asyncio.sleep(0.05)
        assert await b.until_connected(10)
        o = order(20)
        s = await b.submit(o)
        s = await b.wait(o.client_order_id, 5)
        assert s.state is OrderState.FILLED
        ids = [int(m[1]) for m in srv.received if m[0] == '3']
        errors_103 = len(ids) - len(set(ids))
        assert errors_103 == 0      # the stale nextValidId was never used: ids start above every id seen in use...
        refs = [o_.order_ref for o_ in srv.orders.values()]
        assert refs.count(o.client_order_id) == 1                      # ...and exactly one order exists for it
    scenario(fn)


def test_silent_order_times_out_and_is_cancelled():
    async def fn(srv, b):
        o = order(30, 'KO')
        srv.plans[o.client_order_id] = Plan(silent=True)
        s = await b.submit(o)
        assert s.state is OrderState.PENDING_SUBMIT
        s = await b.wait(o.client_order_id, 0.3)
        assert not s.is_done
        s = await b.cancel(o.client_order_id)
        assert s.state is OrderState.CANCELLED
    scenario(fn)


def test_link_outage_blocks_orders_and_rerequests_executions():
    async def fn(srv, b):
        o = order(40, 'AAPL', qty=12)
        srv.faults.link_outage.add(o.client_order_id)
        await b.submit(o)
        s = await b.wait(o.client_order_id, 10)
        assert s.state is OrderState.FILLED and s.filled_quantity == 12     # learned from re-requested executions
        srv.broadcast_error(1100, 'Connectivity between IB and Trader Workstation has been lost.')
        await asyncio.sleep(0.1)
        assert not b.is_connected()
        with pytest.raises(NotConnected):
            await b.submit(order(41))
        srv.broadcast_error(1101, 'Connectivity restored - data lost.')
        await asyncio.sleep(0.1)
        assert b.is_connected()
        assert (await b.wait((await b.submit(order(42))).client_order_id, 5)).state is OrderState.FILLED
    scenario(fn)


def test_throttle_is_respected_in_a_burst():
    async def fn(srv, b):
        throttled = []
        b.ib.client.throttleStart += lambda: throttled.append(1)
        srv.default_plan = Plan(hold=True)
        b.ack_timeout = 0.01
        snaps = [await b.submit(order(100 + i, qty=1)) for i in range(60)]
        assert throttled, 'ib_async throttle never engaged for 60 requests'
        assert all(s.state is not OrderState.REJECTED for s in snaps)
        for _ in range(500):                                           # the throttled tail drains within seconds
            if srv.place_count == 60: break
            await asyncio.sleep(0.02)
        assert srv.place_count == 60 and len({o.order_ref for o in srv.orders.values()}) == 60
    scenario(fn)


def test_orders_from_an_earlier_process_are_adopted():
    async def go():
        srv = TWSServer(prices=PRICES)
        port = await srv.start()
        b1 = IBKRBroker(SETTINGS, SystemClock(), port=port, ack_timeout=0.5)
        await b1.connect()
        srv.plans['old-AAPL-BUY-1'] = Plan(hold=True)
        await b1.submit(order(1, run='old'))
        await b1.disconnect()
        b2 = IBKRBroker(SETTINGS, SystemClock(), port=port, ack_timeout=0.5)
        await b2.connect()
        try:
            s = await b2.order_status('old-AAPL-BUY-1')
            assert s is not None and s.state is OrderState.SUBMITTED and s.broker_order_id
        finally:
            await b2.disconnect(); await srv.stop()
    run(go())


# -- 50+ orders through the OrderManager -------------------------------------------------------------------

def test_fifty_five_orders_through_order_manager(tmp_path):
    from trading_workbench.core.clock import FixedClock
    from trading_workbench.execution.broker import SyncBroker
    from trading_workbench.execution.orders import OrderManager
    from trading_workbench.store.db import Store
    from trading_workbench.recovery.checkpoints import CheckpointManager
    clock = FixedClock('2026-11-24 15:00')
    store = Store(f'sqlite:///{tmp_path}/ib.db', clock=clock)
    srv = TWSServer(prices=PRICES)
    b = IBKRBroker(SETTINGS, clock, ack_timeout=0.3)
    sb = SyncBroker(b)
    try:
        b.port = sb.run(srv.start())
        oms = OrderManager(sb, store, SETTINGS, clock, CheckpointManager(store), order_timeout=0.3)
        assert oms.start().ok
        expected = {}
        tickers = list(PRICES)
        for i in range(55):
            t = tickers[i % len(tickers)]
            side = 'BUY' if (i // len(tickers)) % 2 == 0 else 'SELL'
            o = order(i, t, side, qty=10 + i, run='ib55')
            kind = i % 11
            if kind == 3: srv.plans[o.client_order_id] = Plan(parts=3)
            elif kind == 5: srv.plans[o.client_order_id] = Plan(hold=True)
            elif kind == 7: srv.plans[o.client_order_id] = Plan(reject='no permissions')
            elif kind == 9: srv.plans[o.client_order_id] = Plan(silent=True)
            expected[o.client_order_id] = {5: OrderState.CANCELLED, 7: OrderState.REJECTED,
                                           9: OrderState.CANCELLED}.get(kind, OrderState.FILLED)
            r = oms.manage_order_lifecycle(o, PRICES[t])
            assert r.status in ('COMPLETE', 'REJECTED'), r
            if r.status == 'COMPLETE': assert r.reconciliation.ok, r.reconciliation
        journal = {r['client_order_id']: r for r in store.orders(run_id='ib55')}
        assert len(journal) == 55
        for coid, st in expected.items():
            assert journal[coid]['state'] == st.value, (coid, journal[coid]['state'], st)
        # the store agrees with the broker (the test server's book)
        srv_orders = {o.order_ref: o for o in srv.orders.values()}
        for coid, row in journal.items():
            assert row['filled_quantity'] == int(srv_orders[coid].filled)
            assert sum(f.quantity for f in store.fills(coid)) == row['filled_quantity']
        assert {p.ticker: p.quantity for p in store.positions('DU1234567')} == \
               {s: int(q) for s, (q, _) in srv.positions.items() if q}
        assert {f.exec_id for f in store.fills()} == {e.exec_id for e in srv.execs}
    finally:
        sb.close()
        loop = asyncio.new_event_loop()
        loop.close()


# -- issue 10: each broker fault first reproduced by the test server, then through the OrderManager ------------

class OMSRig:
    "A store, an IBKRBroker behind a SyncBroker, a TWS test server on the broker's loop, and an OrderManager."
    def __init__(self, tmp_path, clock_at='2026-11-24 15:00', srv=None, db='ib.db', order_timeout=2.0,
                 settings=SETTINGS, **broker_kw):
        from trading_workbench.core.clock import FixedClock
        from trading_workbench.execution.broker import SyncBroker
        from trading_workbench.execution.orders import OrderManager
        from trading_workbench.store.db import Store
        self.clock = FixedClock(clock_at)
        self.store = Store(f'sqlite:///{tmp_path}/{db}', clock=self.clock)
        kw = dict(ack_timeout=0.5, reconnect_attempts=6, reconnect_max_wait=0.3) | broker_kw
        self.b = IBKRBroker(settings, self.clock, **kw)
        self.sb = SyncBroker(self.b)
        self.srv = srv or TWSServer(prices=PRICES)
        self.b.port = self.sb.run(self.srv.start())    # (a server handed over keeps its book: a gateway that stayed up)
        self.oms = OrderManager(self.sb, self.store, settings, self.clock, order_timeout=order_timeout)

    def close(self, stop_server=True):
        if stop_server: self.sb.run(self.srv.stop())
        self.sb.close(); self.store.close()

    def alerts(self) -> str: return ' | '.join(self.store.alerts()['message'])


def test_fault1_commissions_reach_the_store_in_either_order(tmp_path):
    for first in (False, True):
        rig = OMSRig(tmp_path, db=f'c{first}.db')
        try:
            rig.srv.faults.commission_first = first
            assert rig.oms.start().ok
            o = order(1, 'JPM', qty=20, run=f'comm{first}')
            rig.srv.plans[o.client_order_id] = Plan(parts=2)
            r = rig.oms.manage_order_lifecycle(o, PRICES['JPM'])
            assert r.status == 'COMPLETE' and r.reconciliation.ok, r
            assert r.reconciliation.commission == pytest.approx(2.0)
            assert [f.commission for f in rig.store.fills(o.client_order_id)] == [pytest.approx(1.0)] * 2
        finally: rig.close()


def test_fault2_drop_right_after_placeorder_is_journaled_with_its_fills(tmp_path):
    rig = OMSRig(tmp_path)
    try:
        assert rig.oms.start().ok
        o = order(1, run='drop')
        rig.srv.faults.drop_after_ack.add(o.client_order_id)
        r = rig.oms.manage_order_lifecycle(o, PRICES['AAPL'])
        assert r.status == 'COMPLETE' and r.reconciliation.ok, (r.status, r.reasons)
        row = rig.store.order(o.client_order_id)
        assert (row['state'], row['filled_quantity']) == ('filled', 10)
        assert sum(f.quantity for f in rig.store.fills(o.client_order_id)) == 10
        # a second outage that does not end: the order's outcome is unknown, never an exception and never COMPLETE
        o2 = order(2, 'MSFT', run='drop')
        rig.srv.faults.drop_after_ack.add(o2.client_order_id)
        rig.srv.plans[o2.client_order_id] = Plan(hold=True)
        rig.b.reconnect_attempts = 2
        rig.srv.faults.refuse_connections = True                # the gateway goes away for good after the drop
        r2 = rig.oms.manage_order_lifecycle(o2, PRICES['MSFT'])
        assert r2.status == 'UNKNOWN', (r2.status, r2.reasons)
        assert rig.store.order(o2.client_order_id)['state'] == 'unknown'
        assert o2.client_order_id in rig.alerts()
    finally: rig.close(stop_server=False)


def test_fault3_order_id_rollback_in_a_new_process_counts_executions(tmp_path):
    async def go():
        srv = TWSServer(prices=PRICES)
        port = await srv.start()
        b1 = IBKRBroker(SETTINGS, SystemClock(), port=port, ack_timeout=0.5)
        await b1.connect()
        for i in range(3): await b1.wait((await b1.submit(order(i, run='p1'))).client_order_id, 5)
        await b1.disconnect()
        srv.faults.next_valid_id_on_reconnect = 1                # the gateway restarted and forgot its ids
        b2 = IBKRBroker(SETTINGS, SystemClock(), port=port, ack_timeout=0.5)
        await b2.connect()
        try:
            s = await b2.wait((await b2.submit(order(9, run='p2'))).client_order_id, 5)
            assert s.state is OrderState.FILLED, (s.state, s.message)
            assert len(srv.orders) == 4
        finally:
            await b2.disconnect(); await srv.stop()
    run(go())


def test_fault4_unanswered_order_and_cancel_is_unknown_until_reconciled(tmp_path):
    rig = OMSRig(tmp_path, order_timeout=0.3)
    try:
        assert rig.oms.start().ok
        o = order(1, 'KO', run='deaf')
        rig.srv.plans[o.client_order_id] = Plan(silent=True, deaf=True)
        r = rig.oms.manage_order_lifecycle(o, PRICES['KO'])
        assert r.status == 'UNKNOWN', (r.status, r.reasons)
        assert rig.store.order(o.client_order_id)['state'] == 'unknown'
        assert f'order {o.client_order_id} outcome unknown' in rig.alerts()
        # its ticker takes no new order; another ticker does
        r2 = rig.oms.manage_order_lifecycle(order(2, 'KO', 'SELL', run='deaf'), PRICES['KO'])
        assert (r2.status, r2.reasons) == ('REJECTED', ('unresolved_order',))
        assert rig.oms.manage_order_lifecycle(order(3, 'XOM', run='deaf'), PRICES['XOM']).status == 'COMPLETE'
        # the gateway recovers and reports the order among its completed ones: reconciliation resolves it
        so = next(x for x in rig.srv.orders.values() if x.order_ref == o.client_order_id)
        so.status, so.day = 'Cancelled', rig.srv.day
        found = rig.oms.reconcile_unknown()
        assert len(found) == 1 and 'found among the broker\'s orders: cancelled' in found[0], found
        assert rig.store.order(o.client_order_id)['state'] == 'cancelled'
        assert rig.oms.manage_order_lifecycle(order(4, 'KO', run='deaf'), PRICES['KO']).status == 'COMPLETE'
    finally: rig.close()


def test_fault4_silent_gateway_fails_connect_with_a_typed_error():
    from trading_workbench.execution.broker import BrokerError, GatewayNotReady
    async def go():
        srv = TWSServer(prices=PRICES)
        srv.faults.silent_after_start = True
        port = await srv.start()
        b = IBKRBroker(SETTINGS, SystemClock(), port=port, connect_timeout=0.3)
        try:
            with pytest.raises(GatewayNotReady, match='did not complete its start within 0.3 s') as e:
                await b.connect()
            assert isinstance(e.value, BrokerError) and not b.is_connected()
        finally:
            await b.disconnect(); await srv.stop()
    run(go())


def test_fault4_lost_answers_raise_broker_errors_not_builtin_timeouts():
    from trading_workbench.execution.broker import BrokerTimeout
    async def fn(srv, b):
        b.connect_timeout = 0.2
        srv.faults.silent_after_start = True                    # from now on the gateway answers nothing
        with pytest.raises(BrokerTimeout, match='executions request .* no answer within 0.2 s'):
            await b.executions()
    scenario(fn)


def test_fault5_filled_while_down_found_next_day_is_not_expired(tmp_path):
    rig = OMSRig(tmp_path, clock_at='2026-11-24 15:00')
    o = order(1, run='down')
    try:
        assert rig.oms.start().ok
        rig.srv.plans[o.client_order_id] = Plan(hold=True)
        rig.store.journal_order(o)                                # as the order manager does, then the process dies
        rig.oms._journal(rig.sb.submit(o), 'acknowledged by broker')
        assert rig.store.order(o.client_order_id)['state'] == 'submitted'
    finally: rig.close(stop_server=False)
    rig.srv.fill_held(o.client_order_id)                          # fills while nobody listens
    rig.srv.new_day()                                            # next day: TWS reports only today's executions
    rig2 = OMSRig(tmp_path, clock_at='2026-11-25 15:00', srv=rig.srv)
    try:
        rep = rig2.oms.start()
        assert rep.ok, rep.problems
        row = rig2.store.order(o.client_order_id)
        assert (row['state'], row['filled_quantity']) == ('filled', 10), row
        assert o.client_order_id not in rep.expired and any('moved by 10' in f for f in rep.findings), rep.findings
        assert 'filled while unobserved' in rig2.alerts()
    finally: rig2.close()


# -- stop orders (issue 9, item 4): STP orders rest at the gateway, a modify moves the trigger, the price triggers them
# ----

def test_stop_order_rests_is_tightened_and_triggers():
    async def fn(srv, b):
        long = order(1, qty=100)
        await b.wait((await b.submit(long)).client_order_id, 5)
        stop = Order('t-AAPL-STP-1', 'AAPL', 'SELL', 100, 'STP', tif='GTC', stop_price=150.0, reduce_only=True,
                     run_id='t')
        s = await b.submit(stop)
        s = await b.wait(stop.client_order_id, 0.2)
        assert s.state is OrderState.SUBMITTED and not s.is_done                  # resting at the gateway
        so = next(o for o in srv.orders.values() if o.order_ref == stop.client_order_id)
        assert (so.order_type, so.aux_price) == ('STP', 150.0)
        srv.set_price('AAPL', 152.0)                                             # above the stop: nothing happens
        assert (await b.wait(stop.client_order_id, 0.2)).state is OrderState.SUBMITTED
        # tightened: same IB order id, new trigger
        s = await b.modify(stop.client_order_id, stop_price=155.0)
        assert s.order.stop_price == 155.0 and so.aux_price == 155.0
        # long, stop, its modification
        assert len([m for m in srv.received if m[0] == '3']) == 3 and len(srv.orders) == 2
        with pytest.raises(ValueError, match='Order.stop_price: must be > 0'):
            await b.modify(stop.client_order_id, stop_price=-1.0)
        srv.set_price('AAPL', 154.0)                                             # through the new trigger
        s = await b.wait(stop.client_order_id, 5)
        assert (s.state, s.filled_quantity, s.avg_fill_price) == (OrderState.FILLED, 100, 154.0)
        assert srv.positions['AAPL'][0] == 0
        with pytest.raises(Exception, match='nothing to modify'):
            await b.modify(stop.client_order_id, stop_price=156.0)
    scenario(fn)


def test_stop_orders_are_adopted_with_their_trigger():
    async def go():
        srv = TWSServer(prices=PRICES)
        port = await srv.start()
        b1 = IBKRBroker(SETTINGS, SystemClock(), port=port, ack_timeout=0.5)
        await b1.connect()
        await b1.submit(Order('old-STP', 'AAPL', 'SELL', 10, 'STP', tif='GTC', stop_price=140.0, run_id='old'))
        await b1.disconnect()
        b2 = IBKRBroker(SETTINGS, SystemClock(), port=port, ack_timeout=0.5)
        await b2.connect()
        try:
            s = await b2.order_status('old-STP')
            assert s is not None and (s.order.order_type.value, s.order.stop_price, s.state) == ('STP', 140.0,
                                                                                                 OrderState.SUBMITTED)
            assert (await b2.modify('old-STP', stop_price=145.0)).order.stop_price == 145.0
        finally:
            await b2.disconnect(); await srv.stop()
    run(go())


def test_cancel_of_an_order_that_already_filled_finds_the_fill():
    async def fn(srv, b):
        o = order(60, 'PG' if 'PG' in PRICES else 'KO', qty=10)
        srv.plans[o.client_order_id] = Plan(hold=True)
        await b.submit(o)
        srv.fill_held(o.client_order_id, report=False)      # filled, but the report was lost on the way
        # IB answers 161 (not cancellable); ib_async would call it cancelled
        s = await b.cancel(o.client_order_id)
        s = await b.wait(o.client_order_id, 5)
        assert (s.state, s.filled_quantity) == (OrderState.FILLED, 10), (s.state, s.filled_quantity, s.message)
    scenario(fn)


# -- market data: prices from an IB snapshot on qualified contracts, delayed when there is no subscription ------------

def test_quotes_from_a_snapshot_on_qualified_contracts_state_their_delay():
    async def fn(srv, b):
        q = await b.quotes(['AAPL', 'MSFT', 'NOPE'], delayed=True, timeout=5)
        # NOPE cannot be qualified: no price, no guess
        assert set(q) == {'AAPL', 'MSFT'}
        assert (q['AAPL'].price, q['AAPL'].delay_minutes, q['AAPL'].bid, q['AAPL'].ask) == (159.54, 15, 159.53, 159.55)
        assert 'delayed 15 min' in q['AAPL'].describe()
        assert ['59', '1', '3'] in srv.received                            # asked for delayed data (type 3)
        # the order goes out on the qualified contract
        s = await b.wait((await b.submit(order(7, 'AAPL'))).client_order_id, 5)
        assert s.state is OrderState.FILLED and [m for m in srv.received
                                                 if m[0] == '3'][-1][2] == str(srv.con_id('AAPL'))
        srv.prices['AAPL'] = 161.0
        live = await b.quotes(['AAPL'], delayed=False, timeout=5)
        assert (live['AAPL'].price, live['AAPL'].delayed) == (161.0, False)
    scenario(fn)


def test_an_order_queued_for_the_open_is_left_working_and_reconciled_later(tmp_path):
    rig = OMSRig(tmp_path, order_timeout=0.3)
    try:
        assert rig.oms.start().ok
        o = order(1, 'KO', run='queued')
        # IB holds it until the next session opens
        rig.srv.plans[o.client_order_id] = Plan(hold=True)
        r = rig.oms.manage_order_lifecycle(o, PRICES['KO'], follow=False)
        assert r.status == 'WORKING' and rig.store.order(o.client_order_id)['state'] == 'submitted'
        assert not any(m[0] == '4' for m in rig.srv.received)                  # never cancelled by the monitor
        rig.srv.fill_held(o.client_order_id)                                   # the open
        rep = rig.oms.start()                                                  # the next run's reconciliation
        assert rep.ok and o.client_order_id in rep.updated
        row = rig.store.order(o.client_order_id)
        assert (row['state'], row['filled_quantity']) == ('filled', 10)
        assert sum(f.quantity for f in rig.store.fills(o.client_order_id)) == 10
    finally: rig.close()


# -- the daily run's order step on a real gateway: market hours decide, IB prices size and limit --------------------

@pytest.mark.parametrize('utc_time, outside, timing, expect, kind', [
    # Tuesday 15:40 ET: the market is open, trade now
    ('2026-11-24 20:40', 'queue', 'before_close', 'COMPLETE', 'LMT'),
    # 16:30 ET, the old schedule: queued, never cancelled
    ('2026-11-24 21:30', 'queue', 'before_close', 'WORKING', 'LMT'),
    ('2026-11-24 20:40', 'queue', 'closing_auction', 'COMPLETE', 'LOC'),  # before the 15:50 cutoff: limit-on-close
    ('2026-11-26 16:00', 'refuse', 'before_close', None,
     None)])          # Thanksgiving, outside_hours = refuse: nothing is sent
def test_daily_orders_follow_market_hours_and_ib_prices(tmp_path, utc_time, outside, timing, expect, kind):
    import dataclasses, pandas as pd
    from trading_workbench.core.types import Signal, Provenance, SignalBundle
    from trading_workbench.ops.daily import DailyPlan, daily_orders
    ib = dataclasses.replace(SETTINGS, broker=dataclasses.replace(SETTINGS.broker, kind='ibkr'),
                             execution=dataclasses.replace(SETTINGS.execution, outside_hours=outside,
                                                           ibkr_timing=timing))
    rig = OMSRig(tmp_path, clock_at=utc_time, settings=ib, order_timeout=0.5)
    try:
        rig.srv.default_plan = Plan(hold=expect == 'WORKING')
        sig = Signal('AAPL', 'BUY', 0.8, 0.2, 0.01, 5, 150.0, rig.clock.now(), Provenance('m', '1'))
        plan = DailyPlan(pd.Timestamp(utc_time[:10]), 'd1', 'daily-x', ('AAPL',))
        # 150: a stale close
        startup, res = daily_orders(rig.oms, {'AAPL': SignalBundle((sig,), sig, None)}, {'AAPL': 150.0}, plan)
        assert startup.ok
        if expect is None:
            assert res == [] and not [m for m in rig.srv.received if m[0] == '3']
            return
        assert [r.status for r in res] == [expect]
        assert [o.order_type for o in rig.srv.orders.values()] == [kind]
        # priced on IB's snapshot, not the stale close
        assert res[0].order.limit_price == round(159.54 * 1.001, 2)
        assert not [m for m in rig.srv.received if m[0] == '4']               # nothing cancelled
    finally: rig.close()
