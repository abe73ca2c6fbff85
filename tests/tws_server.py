"""A TWS / IB Gateway protocol test server (asyncio, 127.0.0.1), for testing the IBKR broker without IB.

It speaks the real wire protocol that ib_async speaks (see ib_async's client.py, decoder.py, wrapper.py):

* handshake: the client sends ``API\\0`` and a length-prefixed ``v<min>..<max>``; the server answers with its
  version and connection time; the client's startApi (71) is answered with nextValidId (9) and
  managedAccounts (15);
* framing: every message is a 4-byte big-endian length and NUL-terminated fields;
* startup requests: positions (61 -> 61*, 62), open orders (5 -> 5*, 3*, 53), completed orders (99 -> 101*, 102),
  account updates (6 -> 6*, 7*, 8, 54), account updates multi (76 -> 73*, 74), executions (7 -> 11*, 59*, 55),
  next ids (8 -> 9), current time (49 -> 49);
* orders: placeOrder (3) -> openOrder (5) + orderStatus (3) -> execDetails (11) -> commissionReport (59), in
  as many partial fills as the order's plan says; cancelOrder (4) -> orderStatus Cancelled + error 202.

Fault injection (attributes of ``Faults``) covers: dropping the connection mid-order, duplicated status messages,
commission reports before their executions, rejections (error 201), a nextValidId lower than before (and error 103
for a reused id), silent orders that never get a status, and an IB-link outage (1100, then 1101/1102) during which
fills happen without being reported live; a gateway that goes silent after startApi; orders whose cancel is
never answered (``Plan(deaf=True)``); acknowledgements that come late (``ack_delay``); a new trading day (``new_day``)
after which, as in TWS, only the new day's executions and completed orders are reported.

Stop orders (STP, trigger in ``auxPrice``) rest until ``set_price`` trades through the trigger, then fill at that
price; placing a known order id again with the same ``orderRef`` modifies it (a new trigger), as TWS does.
"""
from __future__ import annotations

import asyncio
import itertools
import logging
import struct
import time
from dataclasses import dataclass, field

log = logging.getLogger('tws_server')

UNSET_DOUBLE = 1.7976931348623157e308


def frame(*fields) -> bytes:
    "One message: a 4-byte length prefix and NUL-terminated fields."
    body = b''.join(str(f).encode() + b'\0' for f in fields)
    return struct.pack('>I', len(body)) + body


def fmt(x) -> str:
    "A number as TWS writes it."
    if isinstance(x, bool): return '1' if x else '0'
    if isinstance(x, float) and x.is_integer(): return str(int(x)) if abs(x) < 1e15 else str(x)
    return str(x)


@dataclass
class Plan:
    "How the server executes one order: fills in `parts` executions, or waits (`hold`), or never answers (`silent`)."
    parts: int = 1
    hold: bool = False
    silent: bool = False
    deaf: bool = False            # with `silent`: a cancel is not answered either
    reject: str = ''
    price: float | None = None


@dataclass
class Faults:
    "Knobs for fault injection; tests set them before (or while) talking to the server."
    drop_after_ack: set = field(default_factory=set)          # orderRefs: close the socket right after acknowledging, then fill
    drop_after_first_fill: set = field(default_factory=set)   # orderRefs: close the socket after the first partial fill
    duplicate_status: bool = False                            # every orderStatus is sent twice
    commission_first: bool = False                            # commissionReport before its execDetails
    next_valid_id_on_reconnect: int | None = None             # a lower id than before, on the next connection
    link_outage: set = field(default_factory=set)             # orderRefs: send 1100, fill silently, then 1102
    link_restore_code: int = 1102
    silent_after_start: bool = False                          # answer startApi, then nothing at all
    refuse_connections: bool = False                          # the gateway is gone: new connections are closed at once
    ack_delay: float = 0.0                                    # seconds before a placement is acknowledged (it is booked at once)


@dataclass
class SrvOrder:
    order_id: int
    perm_id: int
    client_id: int
    symbol: str
    action: str
    quantity: float
    order_type: str
    lmt_price: float
    tif: str
    account: str
    order_ref: str
    aux_price: float = 0.0
    day: int = 0                  # the trading day it was placed, then the day it completed
    status: str = 'PreSubmitted'
    filled: float = 0.0
    avg_price: float = 0.0
    last_price: float = 0.0
    completed_time: str = ''

    @property
    def remaining(self) -> float: return self.quantity - self.filled

    @property
    def done(self) -> bool: return self.status in ('Filled', 'Cancelled', 'Inactive', 'ApiCancelled')


@dataclass
class SrvExec:
    exec_id: str
    order: SrvOrder
    shares: float
    price: float
    cum_qty: float
    avg_price: float
    time: str
    commission: float
    realized_pnl: float
    day: int = 0


class TWSServer:
    "An in-process TWS: orders, executions, positions and an account, reachable over the real protocol."

    def __init__(self, server_version: int = 178, account: str = 'DU1234567', next_valid_id: int = 1,
                 cash: float = 1_000_000.0, prices: dict | None = None, commission_per_share: float = 0.005,
                 min_commission: float = 1.0):
        self.server_version, self.account, self.next_valid_id = server_version, account, next_valid_id
        self.cash, self.prices = cash, dict(prices or {})
        self.commission_per_share, self.min_commission = commission_per_share, min_commission
        self.faults = Faults()
        self.plans: dict[str, Plan] = {}          # orderRef -> plan
        self.default_plan = Plan()
        self.orders: dict[int, SrvOrder] = {}
        self.execs: list[SrvExec] = []
        self.positions: dict[str, list[float]] = {}   # symbol -> [qty, avg_cost]
        self.received: list[list[str]] = []           # every client message, for assertions
        self.place_count = 0
        self.connections = 0
        self._perm = itertools.count(900_000)
        self._exec = itertools.count(1)
        self._server: asyncio.base_events.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []
        self.conns: list[_Conn] = []
        self._con_ids: dict[str, int] = {}
        self._pending: set[asyncio.Task] = set()
        self.port = 0
        self.day = 0                                    # trading days since start: TWS reports only today's executions

    # -- lifecycle -------------------------------------------------------------------------------
    async def start(self) -> int:
        self._server = await asyncio.start_server(self._serve, '127.0.0.1', 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def stop(self) -> None:
        for t in list(self._pending): t.cancel()
        for w in list(self._writers): w.close()
        if self._server:
            self._server.close()
            await self._server.wait_closed()

    def drop_all(self) -> None:
        "Close every client connection (as a TWS restart would)."
        for w in list(self._writers): w.close()

    def con_id(self, symbol: str) -> int:
        "IB's contract id for `symbol` (stable within a server; ib_async keys positions by it)."
        return self._con_ids.setdefault(symbol, 265_598 + len(self._con_ids))

    def broadcast_error(self, code: int, text: str) -> None:
        "Send a connection-level error (req id -1), e.g. 1100 / 1102, to every client."
        for c in list(self.conns): c.error(-1, code, text)

    def new_day(self) -> None:
        "The gateway's nightly restart: yesterday's executions and completed orders are no longer reported."
        self.day += 1

    def conn_for(self, o: SrvOrder):
        "The live connection of the client that placed `o` (the newest: a client id reconnecting replaces its old link), if any."
        return next((c for c in reversed(self.conns) if c.client_id == o.client_id and not c.closed), None)

    def fill_held(self, order_ref: str, report: bool = True) -> SrvOrder:
        "Fill a held order now (reported live if `report` and its client is connected)."
        o = next(o for o in self.orders.values() if o.order_ref == order_ref)
        c = self.conn_for(o) if report else None
        if c is None: _Conn(self, None).fill_all(o, self.plans.get(order_ref, self.default_plan), live=False)
        else: c.fill_all(o, self.plans.get(order_ref, self.default_plan), live=True)
        return o

    def set_price(self, symbol: str, price: float) -> list[SrvOrder]:
        "A new last price: working STOP orders whose trigger it reaches fill at it. Returns the triggered orders."
        self.prices[symbol] = price
        hit = [o for o in self.orders.values() if o.symbol == symbol and o.order_type == 'STP' and not o.done
               and ((o.action == 'SELL' and price <= o.aux_price) or (o.action == 'BUY' and price >= o.aux_price))]
        for o in hit:
            c = self.conn_for(o) or _Conn(self, None)
            c.fill_all(o, Plan(price=price), live=not c.closed)
        return hit

    def _spawn(self, coro) -> None:
        t = asyncio.ensure_future(coro)
        self._pending.add(t)
        t.add_done_callback(self._pending.discard)

    # -- reading ---------------------------------------------------------------------------------
    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.faults.refuse_connections:
            writer.close()
            return
        self.connections += 1
        self._writers.append(writer)
        conn = _Conn(self, writer)
        self.conns.append(conn)
        try:
            head = await reader.readexactly(4)
            if head != b'API\0':
                log.warning('bad handshake prefix %r', head)
                return
            n = struct.unpack('>I', await reader.readexactly(4))[0]
            versions = (await reader.readexactly(n)).decode()
            lo, hi = versions.split()[0][1:].split('..')
            if not int(lo) <= self.server_version <= int(hi):
                log.warning('client versions %s do not include %d', versions, self.server_version)
                return
            conn.send(self.server_version, time.strftime('%Y%m%d %H:%M:%S') + ' UTC')
            while True:
                n = struct.unpack('>I', await reader.readexactly(4))[0]
                fields = (await reader.readexactly(n)).decode().split('\0')[:-1]
                self.received.append(fields)
                await conn.handle(fields)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the client went away: normal end of a connection
        finally:
            conn.closed = True
            if conn in self.conns: self.conns.remove(conn)
            if writer in self._writers: self._writers.remove(writer)
            writer.close()

    # -- the book --------------------------------------------------------------------------------
    def price_for(self, o: SrvOrder, plan: Plan) -> float:
        if plan.price is not None: return plan.price
        if o.order_type == 'LMT': return o.lmt_price
        return self.prices.get(o.symbol, 100.0)

    def book(self, o: SrvOrder, shares: float, price: float) -> SrvExec:
        "Execute `shares` of `o` at `price`: update the order, the position and cash."
        signed = shares if o.action == 'BUY' else -shares
        pos = self.positions.setdefault(o.symbol, [0.0, 0.0])
        realized = 0.0
        if pos[0] == 0 or (pos[0] > 0) == (signed > 0):
            pos[1] = (abs(pos[0]) * pos[1] + shares * price) / (abs(pos[0]) + shares)
        else:
            realized = min(abs(pos[0]), shares) * (price - pos[1]) * (1 if pos[0] > 0 else -1)
        pos[0] += signed
        if pos[0] == 0: pos[1] = 0.0
        commission = round(max(self.min_commission, self.commission_per_share * shares), 4)
        self.cash -= signed * price + commission
        o.avg_price = (o.avg_price * o.filled + price * shares) / (o.filled + shares)
        o.filled += shares
        o.last_price = price
        if o.remaining <= 0:
            o.status, o.day = 'Filled', self.day           # reported among completed orders of this day only
            o.completed_time = time.strftime('%Y%m%d %H:%M:%S') + ' UTC'
        else: o.status = 'Submitted'
        ex = SrvExec(f'0000e{next(self._exec):06d}.01.01', o, shares, price, o.filled, o.avg_price,
                     time.strftime('%Y%m%d %H:%M:%S') + ' UTC', commission, realized, self.day)
        self.execs.append(ex)
        return ex


class _Conn:
    "One client connection."

    def __init__(self, srv: TWSServer, writer: asyncio.StreamWriter | None):
        self.srv, self.writer, self.closed = srv, writer, writer is None   # no writer: a client that is not there
        self.client_id = -1
        self.positions_sub = False
        self.account_sub = False
        self.market_data_type = 1                    # 1 live, 3 delayed (reqMarketDataType)

    def send(self, *fields) -> None:
        if self.closed or self.writer is None or self.writer.is_closing(): return
        self.writer.write(frame(*[fmt(f) for f in fields]))

    def drop(self) -> None:
        "Close this connection abruptly."
        self.closed = True
        self.writer.close()

    # -- outgoing messages -------------------------------------------------------------------------
    def contract_fields(self, symbol: str) -> list:
        return [self.srv.con_id(symbol), symbol, 'STK', '', 0, '', '', 'SMART', 'USD', symbol, symbol]

    def error(self, req_id: int, code: int, text: str) -> None:
        self.send(4, 2, req_id, code, text, '')

    def order_status(self, o: SrvOrder) -> None:
        n = 2 if self.srv.faults.duplicate_status else 1
        for _ in range(n):
            self.send(3, o.order_id, o.status, fmt(o.filled), fmt(o.remaining), o.avg_price, o.perm_id, 0,
                      o.last_price, o.client_id, '', 0)

    def open_order(self, o: SrvOrder) -> None:
        sv = self.srv.server_version
        f = [5, o.order_id, *self.contract_fields(o.symbol), o.action, fmt(o.quantity), o.order_type, o.lmt_price, o.aux_price or '',
             o.tif, '', o.account, 'O', 0, o.order_ref, o.client_id, o.perm_id, 0, 0, 0, '', '', '', '', '']
        if sv < 177: f += ['']                                       # faProfile
        f += ['', '', '', '', '', 0, '', '', 0, '', '', '', '', '', '', 0, 0, 0, '', 3, 0, 0, '', 0, 0, '', 0, '', '']
        f += [0, 0, '', '', '', '', '']                              # continuousUpdate .. comboLegsDescrip
        f += [0, 0, 0]                                               # combo legs, order combo legs, smart params
        f += ['', '', '']                                            # scale
        f += ['']                                                    # hedgeType
        f += [0, '', '', 0, 0]                                       # optOutSmartRouting .. dncPresent
        f += ['']                                                    # algoStrategy
        f += [0, 0, o.status] + [''] * 9 + ['', '', '', '', '', 0, 0]  # solicited, whatIf, status, margins, commission..
        f += [0]                                                     # conditions
        f += ['', '', '', '', '', '', '', 0, '', '', '', '', 0, 0, '', 0]
        if sv >= 159: f += ['']
        if sv >= 160: f += ['']
        if sv >= 162: f += [0]
        if sv >= 170: f += ['', '', '', '', '']
        self.send(*f)

    def completed_order(self, o: SrvOrder) -> None:
        sv = self.srv.server_version
        f = [101, *self.contract_fields(o.symbol), o.action, fmt(o.quantity), o.order_type, o.lmt_price, o.aux_price or '', o.tif, '',
             o.account, 'O', 0, o.order_ref, o.perm_id, 0, 0, 0, '', '', '', '']
        if sv < 177: f += ['']
        f += ['', '', '', '', '', 0, '', '', '', '', '', '', '', '', 0, 0, '', 0, 0, '', 0, '', '']
        f += [0, 0, '', '', '']
        f += [0, 0, 0]
        f += ['', '', '']
        f += ['']
        f += ['', '', 0, 0]
        f += ['']
        f += [0, o.status, 0, 0]
        f += [0]
        f += ['', '', '', 0, 0, '', fmt(o.filled), 0, 0, '', 0, 0, '', o.completed_time, o.status]
        if sv >= 170: f += ['', '', '', '', '']
        self.send(*f)

    def exec_details(self, req_id: int, ex: SrvExec) -> None:
        o = ex.order
        f = [11, req_id, o.order_id, *self.contract_fields(o.symbol), ex.exec_id, ex.time, o.account, 'ISLAND',
             'BOT' if o.action == 'BUY' else 'SLD', fmt(ex.shares), ex.price, o.perm_id, o.client_id, 0,
             fmt(ex.cum_qty), ex.avg_price, o.order_ref, '', '', '', 1]
        if self.srv.server_version >= 178: f += [0]
        self.send(*f)

    def commission_report(self, ex: SrvExec) -> None:
        self.send(59, 1, ex.exec_id, ex.commission, 'USD', ex.realized_pnl if ex.realized_pnl else UNSET_DOUBLE,
                  UNSET_DOUBLE, '')

    def execution(self, req_id: int, ex: SrvExec) -> None:
        if self.srv.faults.commission_first:
            self.commission_report(ex); self.exec_details(req_id, ex)
        else:
            self.exec_details(req_id, ex); self.commission_report(ex)

    def position(self, symbol: str) -> None:
        q, c = self.srv.positions.get(symbol, [0.0, 0.0])
        self.send(61, 3, self.srv.account, *self.contract_fields(symbol)[:7], 'SMART', 'USD', symbol, symbol, fmt(q), c)

    def account_values(self) -> None:
        srv = self.srv
        mv = sum(q * srv.prices.get(s, c) for s, (q, c) in srv.positions.items())
        for key, val in (('TotalCashValue', srv.cash), ('NetLiquidation', srv.cash + mv), ('BuyingPower', srv.cash * 4),
                         ('AvailableFunds', srv.cash)):
            self.send(6, 2, key, round(val, 2), 'USD', srv.account)

    def contract_details(self, req: int, symbol: str, sec_type: str) -> None:
        "A stock's contract details (qualification); error 200 for a symbol the server does not list."
        if sec_type != 'STK' or symbol not in self.srv.prices:
            self.error(req, 200, 'No security definition has been found for the request')
            return
        self.send(10, req, symbol, 'STK', '', 0, '', 'SMART', 'USD', symbol, 'NMS', symbol, self.srv.con_id(symbol), 0.01, '',
                  'LMT,MKT,MOC,STP', 'SMART,NYSE,ISLAND', 1, 0, f'{symbol} INC', 'NASDAQ', '', 'Technology', '', '', 'US/Eastern',
                  '', '', '', 0, 0, 1, '', '', '26', '', 'COMMON', 1, 1, 1)
        self.send(52, 1, req)

    def snapshot(self, req: int, symbol: str) -> None:
        "A market-data snapshot of bid, ask, last and close: live ticks, or delayed ones (66..75) when delayed data was asked for."
        px = self.srv.prices.get(symbol)
        if px is None:
            self.error(req, 200, 'No security definition has been found for the request')
            return
        delayed = self.market_data_type in (3, 4)
        self.send(58, 1, req, self.market_data_type)
        for live, late, v in ((1, 66, round(px - 0.01, 2)), (2, 67, round(px + 0.01, 2)), (4, 68, px), (9, 75, round(px * 0.99, 2))):
            self.send(1, 6, req, late if delayed else live, v, 100, 0)
        self.send(57, 1, req)

    def after_fill(self, o: SrvOrder) -> None:
        if self.positions_sub: self.position(o.symbol)
        if self.account_sub: self.account_values()

    # -- incoming messages -------------------------------------------------------------------------
    async def handle(self, f: list[str]) -> None:
        srv, mid = self.srv, int(f[0])
        if srv.faults.silent_after_start and mid != 71: return        # a gateway that never finishes starting
        if mid == 71:                                            # startApi
            self.client_id = int(f[2])
            nvid = srv.next_valid_id
            if srv.connections > 1 and srv.faults.next_valid_id_on_reconnect is not None:
                nvid = srv.faults.next_valid_id_on_reconnect
            self.send(9, 1, nvid)
            self.send(15, 1, srv.account)
        elif mid == 61:                                          # reqPositions
            self.positions_sub = True
            for s in srv.positions: self.position(s)
            self.send(62, 1)
        elif mid == 64: self.positions_sub = False               # cancelPositions
        elif mid == 5:                                           # reqOpenOrders
            for o in srv.orders.values():
                if not o.done and o.client_id == self.client_id and o.status != '_silent':
                    self.open_order(o); self.order_status(o)
            self.send(53, 1)
        elif mid == 99:                                          # reqCompletedOrders
            for o in srv.orders.values():
                if o.done and o.day == srv.day: self.completed_order(o)
            self.send(102)
        elif mid == 6:                                           # reqAccountUpdates
            self.account_sub = f[2] == '1'
            if self.account_sub:
                self.account_values()
                for s, (q, c) in srv.positions.items():
                    px = srv.prices.get(s, c)
                    self.send(7, 8, *self.contract_fields(s)[:7], '', 'USD', s, s, fmt(q), px, q * px, c, (px - c) * q, 0,
                              srv.account)
                self.send(8, 1, time.strftime('%H:%M'))
                self.send(54, 1, srv.account)
        elif mid == 76:                                          # reqAccountUpdatesMulti
            req = int(f[2])
            self.send(73, 1, req, srv.account, '', 'NetLiquidation', round(srv.cash, 2), 'USD')
            self.send(74, 1, req)
        elif mid == 7:                                           # reqExecutions
            req = int(f[2])
            for ex in srv.execs:
                if ex.order.client_id == self.client_id and ex.day == srv.day: self.execution(req, ex)
            self.send(55, 1, req)
        elif mid == 8:                                           # reqIds
            nxt = max([srv.next_valid_id] + [o.order_id + 1 for o in srv.orders.values()])
            self.send(9, 1, nxt)
        elif mid == 49: self.send(49, 1, int(time.time()))      # reqCurrentTime
        elif mid == 3: await self.place(f)
        elif mid == 4: self.cancel(int(f[2]))
        elif mid == 9: self.contract_details(int(f[2]), f[4], f[5])                      # reqContractDetails
        elif mid == 59: self.market_data_type = int(f[2])                               # reqMarketDataType
        elif mid == 1: self.snapshot(int(f[2]), f[4])                                    # reqMktData (snapshot)
        elif mid in (2, 62, 63, 15, 16, 17, 77, 102): pass      # cancels and subscriptions we accept silently
        else: log.info('tws_server: ignoring message %s', f[:3])

    async def place(self, f: list[str]) -> None:
        srv = self.srv
        srv.place_count += 1
        order_id, symbol, action, qty = int(f[1]), f[3], f[16], float(f[17])
        order_type, lmt, aux, tif, account, ref = f[18], float(f[19] or 0), float(f[20] or 0), f[21], f[23] or srv.account, f[26]
        if lmt >= UNSET_DOUBLE: lmt = 0.0
        if aux >= UNSET_DOUBLE: aux = 0.0
        if order_id in srv.orders and srv.orders[order_id].order_ref != ref:
            self.error(order_id, 103, 'Duplicate order id')
            return
        if order_id in srv.orders:                               # a modification: a new trigger for a working order
            o = srv.orders[order_id]
            if o.done:
                self.error(order_id, 104, 'Cannot modify a filled order.')
                return
            o.aux_price, o.lmt_price = aux, lmt
            self.open_order(o); self.order_status(o)
            return
        o = SrvOrder(order_id, next(srv._perm), self.client_id, symbol, action, qty, order_type, lmt, tif, account, ref,
                     aux_price=aux, day=srv.day)
        srv.orders[order_id] = o
        srv.next_valid_id = max(srv.next_valid_id, order_id + 1)
        if srv.faults.ack_delay:
            await asyncio.sleep(srv.faults.ack_delay)
            c = srv.conn_for(o)
            if c is not self:        # the client went away meanwhile: TWS reports to whoever holds its client id now
                return await (c or _Conn(srv, None)).accept(o)
        await self.accept(o)

    async def accept(self, o: SrvOrder) -> None:
        "Acknowledge a new order and carry out its plan."
        srv, order_id, ref = self.srv, o.order_id, o.order_ref
        plan = srv.plans.get(ref, srv.default_plan)
        if plan.silent:
            o.status = 'Submitted'
            return
        if plan.reject:
            o.status = 'Inactive'
            o.completed_time = time.strftime('%Y%m%d %H:%M:%S') + ' UTC'
            self.error(order_id, 201, f'Order rejected - reason:{plan.reject}')
            return
        o.status = 'PreSubmitted'
        self.open_order(o); self.order_status(o)
        o.status = 'Submitted'
        self.open_order(o); self.order_status(o)
        if ref in srv.faults.drop_after_ack:
            await self.writer.drain()
            self.drop()
            self.fill_all(o, plan, live=False)
            return
        if ref in srv.faults.link_outage:
            self.error(-1, 1100, 'Connectivity between IB and Trader Workstation has been lost.')
            self.fill_all(o, plan, live=False)
            await asyncio.sleep(0.05)
            self.error(-1, srv.faults.link_restore_code, 'Connectivity between IB and Trader Workstation has been restored.')
            return
        if plan.hold or o.order_type == 'STP': return           # a stop rests until set_price reaches its trigger
        self.fill_all(o, plan, live=True)

    def fill_all(self, o: SrvOrder, plan: Plan, live: bool) -> None:
        "Execute the whole order in `plan.parts` executions, reporting them live or not at all."
        srv = self.srv
        parts = max(1, min(plan.parts, int(o.quantity)))
        sizes = [int(o.quantity) // parts] * parts
        sizes[-1] += int(o.quantity) - sum(sizes)
        px = srv.price_for(o, plan)
        for i, sh in enumerate(sizes):
            ex = srv.book(o, float(sh), px)
            if live and not self.closed:
                self.open_order(o) if o.status == 'Filled' else None
                self.order_status(o)
                self.execution(-1, ex)
                self.after_fill(o)
                if i == 0 and o.order_ref in srv.faults.drop_after_first_fill:
                    self.drop()
                    live = False

    def cancel(self, order_id: int) -> None:
        o = self.srv.orders.get(order_id)
        if o is None:
            self.error(order_id, 135, "Can't find order with id =" + str(order_id))
            return
        if o.done:
            self.error(order_id, 161, 'Cancel attempted when order is not in a cancellable state.')
            return
        if self.srv.plans.get(o.order_ref, self.srv.default_plan).deaf: return
        o.status, o.day = 'Cancelled', self.srv.day
        o.completed_time = time.strftime('%Y%m%d %H:%M:%S') + ' UTC'
        self.order_status(o)
        self.error(order_id, 202, 'Order Canceled - reason:')
