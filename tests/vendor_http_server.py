"""A local HTTP server that speaks three market-data vendors' real wire formats, with fault injection.

It serves real bars (by default the bundled CSVs) as:

- Yahoo chart API v8: ``GET /yahoo/v8/finance/chart/{symbol}?period1=..&period2=..&interval=1d``
  (JSON ``{"chart": {"result": [...], "error": null}}``; unknown symbol -> 404 with ``chart.error``;
  rate limit -> 429 with Yahoo's plain-text body ``Too Many Requests``);
- Alpha Vantage: ``GET /alphavantage/query?function=TIME_SERIES_DAILY&symbol=..&outputsize=..&apikey=..``
  (JSON ``{"Meta Data": .., "Time Series (Daily)": {"YYYY-MM-DD": {"1. open": "..", ..}}}``, newest first;
  errors are HTTP 200 with ``{"Error Message": ..}``; rate limits are HTTP 200 with ``{"Note":
  ..}`` or ``{"Information": ..}``);
- Finnhub: ``GET /finnhub/api/v1/stock/candle?symbol=..&resolution=D&from=..&to=..`` with the key in the
  ``X-Finnhub-Token`` header or ``token`` query (``{"c": [..], "h": .., "l": .., "o": ..,
  "s": "ok", "t": .., "v": ..}``;
  ``{"s": "no_data"}``; 401 ``{"error": "Invalid API key"}``; 429 ``{"error": "API limit reached..."}``).

Faults are queued per vendor with ``inject(vendor, *faults)``; each request pops one. Known faults:
``rate_limit``, ``information`` (Alpha Vantage daily-limit wording), ``premium`` (Alpha Vantage premium notice),
``server_error`` (HTTP 503 HTML), ``garbage`` (HTTP 200, not JSON), ``disconnect`` (socket closed without an
answer), ``hang`` (answers after ``hang_s`` seconds, longer than the client's timeout), ``corrupt`` (real bars
with one high below its low and one negative close, near the end of the answer),
``forbidden`` (Finnhub 403 "no access"),
``invalid_crumb`` (Yahoo 401), ``demo_key``, ``invalid_key`` and ``burst`` (Alpha Vantage ``Information`` texts).
Refusals the real services send, in their own words (and where they were seen):

- Yahoo ``invalid_crumb``: HTTP 401 ``{"finance": {"result": null, "error": {"code": "Unauthorized", "description":
  "Invalid Crumb"}}}`` (quoted by users in github.com/iprak/yahoofinance/issues/93 and /94, 2023-04-19).
- Alpha Vantage ``demo_key``: ``{"Information": "The **demo** API key is for demo purposes only. Please claim your free
  API key at (https://www.alphavantage.co/support/#api-key) to explore our full API offerings. ..."}`` (captured
  bodies in public client tests, e.g. the TechnicalIndicatorResponseTest of an Alpha Vantage Java client).
- ``invalid_key``: ``{"Information": "Invalid API key. Please claim your free API key at
https://www.alphavantage.co/support/"}``
  (public client test fixtures); a wrong key otherwise gets the ``Error Message`` "the parameter
  apikey is invalid or missing".
- ``burst``: ``{"Information": "Thank you for using Alpha Vantage! Please consider spreading
out your free API requests more
  sparingly (1 request per second). ... lift the free key rate limit (25 requests per day), raise the per-second burst
  limit, ..."}``; ``information``: the daily quota "Our standard API rate limit is 25 requests per day"; the
  ``outputsize=full`` refusal of a free key: "The outputsize=full parameter value is a premium feature for the
  TIME_SERIES_DAILY endpoint ..." (all three captured from a free key in 2026-08 and kept verbatim in a public
  classifier's tests; the outputsize refusal is also reported in github.com/avresial/FinanceManager/pull/655).

A free Alpha Vantage key (the default; ``alpha_vantage_premium=True`` makes it premium) asking
``outputsize=full`` gets that premium refusal, as the real service answers since 2024.
Every request is recorded in ``requests`` so tests can assert what was (or was not) asked.
"""
from __future__ import annotations
import json, threading, time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable
from urllib.parse import parse_qs, urlsplit
import pandas as pd

BUNDLED = Path(__file__).resolve().parents[1] / 'trading_workbench' / 'data' / 'prices'
VENDORS = ('yahoo', 'alphavantage', 'finnhub')
AV_DEMO_KEY = ('The **demo** API key is for demo purposes only. Please claim your free API key at '
               '(https://www.alphavantage.co/support/#api-key) to explore our full API offerings. It takes fewer than '
               '20 seconds, '
               'and we are committed to making it free forever.')
AV_BURST = ('Thank you for using Alpha Vantage! Please consider spreading out your free API requests more sparingly (1 '
            'request per '
            'second). You may subscribe to any of the premium plans at https://www.alphavantage.co/premium/ to lift '
            'the free key rate '
            'limit (25 requests per day), raise the per-second burst limit, and instantly unlock all premium endpoints')
AV_FULL_IS_PREMIUM = ('Thank you for using Alpha Vantage! The outputsize=full parameter value is a premium feature for '
                      'the '
                      'TIME_SERIES_DAILY endpoint. You may subscribe to any of the premium plans at '
                      'https://www.alphavantage.co/premium/ '
                      'to instantly unlock all premium features')


def bundled_bars(symbol: str) -> pd.DataFrame | None:
    "Real bars of `symbol` from the bundled CSVs, or None if there is no such file."
    p = BUNDLED / f'{symbol}.csv'
    if not p.is_file(): return None
    df = pd.read_csv(p)
    df.columns = [c.strip().lower() for c in df.columns]  # both bundled layouts: Kaggle's and Yahoo's
    df = df.set_index(pd.DatetimeIndex(pd.to_datetime(df.pop('date')), name='date'))
    return df[['open', 'high', 'low', 'close', 'volume']].dropna()


@dataclass
class Request:
    "One request the server received."
    vendor: str
    path: str
    query: dict
    headers: dict


@dataclass
class VendorState:
    "What the server serves and which faults are pending."
    bars: Callable[[str], pd.DataFrame | None]
    keys: dict
    faults: dict = field(default_factory=lambda: defaultdict(deque))
    requests: list = field(default_factory=list)
    hang_s: float = 2.0
    premium: bool = False                     # is the Alpha Vantage key a premium one (outputsize=full allowed)?
    lock: threading.Lock = field(default_factory=threading.Lock)


def _session_open_epoch(d: pd.Timestamp) -> int:
    "Yahoo stamps a daily bar with the session's 09:30 New York time, as epoch seconds."
    return int(pd.Timestamp(d.date()).replace(hour=9, minute=30).tz_localize('America/New_York').timestamp())


def _midnight_utc_epoch(d: pd.Timestamp) -> int:
    "Finnhub stamps a daily candle with 00:00 UTC of the session date."
    return int(pd.Timestamp(d.date()).tz_localize('UTC').timestamp())


def _corrupt(df: pd.DataFrame) -> pd.DataFrame:
    "Real bars with two impossible values, as a vendor glitch would send them."
    df = df.copy()
    if len(df) >= 3:  # the last bars: inside whatever range was asked for
        df.iloc[-2, df.columns.get_loc('high')] = df.iloc[-2]['low'] * 0.5
        df.iloc[-3, df.columns.get_loc('close')] = -df.iloc[-3]['close']
    return df


class _Handler(BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'
    server_version = 'vendor-test/1.0'

    def log_message(self, fmt, *args):  # keep test output quiet; requests are recorded instead
        return

    @property
    def state(self) -> VendorState: return self.server.state

    def _send(self, status: int, body: bytes | str | dict, ctype='application/json', headers=None):
        if isinstance(body, dict): body = json.dumps(body)
        if isinstance(body, str): body = body.encode()
        self.send_response(status)
        self.send_header('Content-Type', ctype)
        self.send_header('Content-Length', str(len(body)))
        for k, v in (headers or {}).items(): self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        u = urlsplit(self.path)
        q = {k: v[-1] for k, v in parse_qs(u.query).items()}
        parts = u.path.strip('/').split('/')
        vendor = parts[0] if parts else ''
        with self.state.lock:
            self.state.requests.append(Request(vendor, u.path, q, dict(self.headers)))
            pending = self.state.faults[vendor]
            fault = pending.popleft() if pending else None
        if fault == 'disconnect':
            self.close_connection = True
            self.connection.shutdown(2)
            return
        if fault == 'hang': time.sleep(self.state.hang_s)
        if fault == 'server_error':
            return self._send(503, '<html><body><h1>503 Service Unavailable</h1></body></html>', 'text/html')
        if fault == 'garbage':
            return self._send(200, '<html>upstream proxy error', 'application/json')
        route = {'yahoo': self._yahoo, 'alphavantage': self._alpha_vantage, 'finnhub': self._finnhub}.get(vendor)
        if route is None: return self._send(404, {'error': f'no route {u.path}'})
        return route(parts, q, fault)

    # --- Yahoo chart API v8 -------------------------------------------------------------------
    def _yahoo(self, parts, q, fault):
        if fault == 'rate_limit': return self._send(429, 'Too Many Requests\r\n', 'text/plain')
        if fault == 'invalid_crumb':
            return self._send(401,
                              {'finance': {'result': None,
                                           'error': {'code': 'Unauthorized', 'description': 'Invalid Crumb'}}})
        if parts[1:4] != ['v8', 'finance', 'chart'] or len(parts) != 5:
            return self._send(404,
                              {'finance': {'result': None,
                                           'error': {'code': 'Not Found', 'description': 'HTTP 404 Not Found'}}})
        symbol = parts[4]
        bars = self.state.bars(symbol)
        if bars is None:
            return self._send(404, {'chart': {'result': None, 'error': {
                'code': 'Not Found', 'description': 'No data found, symbol may be delisted'}}})
        p1, p2 = int(q.get('period1', 0)), int(q.get('period2', 2**31))
        ts = [_session_open_epoch(d) for d in bars.index]
        keep = [p1 <= t < p2 for t in ts]
        sel, ts = bars[keep], [t for t, k in zip(ts, keep) if k]
        if fault == 'corrupt': sel = _corrupt(sel)
        meta = {'currency': 'USD', 'symbol': symbol, 'exchangeName': 'NMS', 'instrumentType': 'EQUITY',
                'gmtoffset': -18000, 'timezone': 'EST', 'exchangeTimezoneName': 'America/New_York',
                'dataGranularity': '1d', 'range': '', 'validRanges': ['1d', '5d', '1mo', 'max']}
        result = {'meta': meta, 'timestamp': ts, 'indicators': {
            'quote': [{'open': sel.open.tolist(), 'high': sel.high.tolist(), 'low': sel.low.tolist(),
                       'close': sel.close.tolist(), 'volume': [int(v) for v in sel.volume]}],
            'adjclose': [{'adjclose': sel.close.tolist()}]}}
        # Yahoo omits timestamp when empty
        if not ts: result = {'meta': meta, 'indicators': {'quote': [{}], 'adjclose': [{}]}}
        return self._send(200, {'chart': {'result': [result], 'error': None}})

    # --- Alpha Vantage ------------------------------------------------------------------------
    def _alpha_vantage(self, parts, q, fault):
        if fault == 'rate_limit':
            return self._send(200,
                              {'Note': 'Thank you for using Alpha Vantage! Our standard API call frequency is 5 calls '
                               'per minute '
                                            'and 500 calls per day. Please visit https://www.alphavantage.co/premium/ '
                                            'if you would '
                                            'like to target a higher API call frequency.'})
        if fault == 'information':
            return self._send(200,
                              {'Information': 'Thank you for using Alpha Vantage! Our standard API rate limit is 25 '
                               'requests per '
                                                   'day. Please subscribe to any of the premium plans at '
                                                   'https://www.alphavantage.co/premium/ to instantly remove all daily '
                                                   'rate limits.'})
        if fault == 'premium':
            return self._send(200,
                              {'Information': 'Thank you for using Alpha Vantage! This is a premium endpoint. You may '
                               'subscribe '
                                                   'to any of the premium plans at '
                                                   'https://www.alphavantage.co/premium/ to instantly '
                                                   'unlock all premium endpoints'})
        if fault == 'burst':
            return self._send(200, {'Information': AV_BURST})
        if fault == 'demo_key':
            return self._send(200, {'Information': AV_DEMO_KEY})
        if fault == 'invalid_key':
            return self._send(200,
                              {'Information': 'Invalid API key. Please claim your free API key at '
                               'https://www.alphavantage.co/support/'})
        if q.get('apikey') != self.state.keys.get('alphavantage'):
            return self._send(200,
                              {'Error Message': 'the parameter apikey is invalid or missing. Please claim your free '
                               'API key on '
                                                     '(https://www.alphavantage.co/support/#api-key). It should take '
                                                     'less than 20 seconds.'})
        fn, symbol = q.get('function'), q.get('symbol', '')
        bars = self.state.bars(symbol) if fn == 'TIME_SERIES_DAILY' else None
        if bars is None:
            return self._send(200, {'Error Message': f'Invalid API call. Please retry or visit the documentation '
                                                     f'(https://www.alphavantage.co/documentation/) for {fn}.'})
        if fault == 'corrupt': bars = _corrupt(bars)
        full = q.get('outputsize', 'compact') == 'full'
        if full and not self.state.premium: return self._send(200, {'Information': AV_FULL_IS_PREMIUM})
        sel = bars if full else bars.iloc[-100:]
        series = {d.strftime('%Y-%m-%d'): {'1. open': f'{r.open:.4f}', '2. high': f'{r.high:.4f}',
                                           '3. low': f'{r.low:.4f}',
                                           '4. close': f'{r.close:.4f}', '5. volume': str(int(r.volume))}
                  for d, r in sel.iloc[::-1].iterrows()}
        meta = {'1. Information': 'Daily Prices (open, high, low, close) and Volumes', '2. Symbol': symbol,
                '3. Last Refreshed': bars.index[-1].strftime('%Y-%m-%d'), '4. Output Size': 'Full size' if full
                else 'Compact', '5. Time Zone': 'US/Eastern'}
        return self._send(200, {'Meta Data': meta, 'Time Series (Daily)': series})

    # --- Finnhub ------------------------------------------------------------------------------
    def _finnhub(self, parts, q, fault):
        if fault == 'rate_limit':
            return self._send(429, {'error': 'API limit reached. Please try again later. Remaining Limit: 0'},
                              headers={'Retry-After': '1', 'X-Ratelimit-Remaining': '0'})
        token = self.headers.get('X-Finnhub-Token') or q.get('token')
        if token != self.state.keys.get('finnhub'): return self._send(401, {'error': 'Invalid API key'})
        if fault == 'forbidden': return self._send(403, {'error': "You don't have access to this resource."})
        if parts[1:] != ['api', 'v1', 'stock', 'candle']: return self._send(404, {'error': 'Not found'})
        bars = self.state.bars(q.get('symbol', ''))
        if bars is None: return self._send(200, {'s': 'no_data'})
        lo, hi = int(q.get('from', 0)), int(q.get('to', 2**31))
        ts = [_midnight_utc_epoch(d) for d in bars.index]
        keep = [lo <= t <= hi for t in ts]
        sel, ts = bars[keep], [t for t, k in zip(ts, keep) if k]
        if fault == 'corrupt': sel = _corrupt(sel)
        if not ts: return self._send(200, {'s': 'no_data'})
        return self._send(200,
                          {'c': sel.close.tolist(), 'h': sel.high.tolist(), 'l': sel.low.tolist(),
                           'o': sel.open.tolist(),
                                's': 'ok', 't': ts, 'v': [float(v) for v in sel.volume]})


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True
    def handle_error(self, request, client_address):
        import sys, traceback
        # a 'disconnect' fault makes the handler's flush fail: expected
        if isinstance(sys.exc_info()[1], OSError): return
        traceback.print_exc()


class VendorServer:
    "Yahoo, Alpha Vantage and Finnhub on 127.0.0.1 (an ephemeral port), serving real bars; a context manager."
    def __init__(self, bars: Callable[[str], pd.DataFrame | None] = bundled_bars, alpha_vantage_key='av-test-key-123',
                 finnhub_key='fh-test-key-456', hang_s: float = 2.0, alpha_vantage_premium: bool = False):
        self.state = VendorState(bars, {'alphavantage': alpha_vantage_key, 'finnhub': finnhub_key}, hang_s=hang_s,
                                 premium=alpha_vantage_premium)
        self._httpd = _QuietServer(('127.0.0.1', 0), _Handler)
        self._httpd.state = self.state
        self._thread = threading.Thread(target=self._httpd.serve_forever, name='vendor-http', daemon=True)

    @property
    def port(self) -> int: return self._httpd.server_address[1]

    def base_url(self, vendor: str) -> str:
        "The base URL a source is configured with for `vendor` (yahoo, alphavantage, finnhub)."
        return {'yahoo': f'http://127.0.0.1:{self.port}/yahoo',
                'alphavantage': f'http://127.0.0.1:{self.port}/alphavantage',
                'finnhub': f'http://127.0.0.1:{self.port}/finnhub/api/v1'}[vendor]

    def inject(self, vendor: str, *faults: str) -> None:
        "Queue `faults` for the next requests to `vendor`, one per request."
        if vendor not in VENDORS: raise ValueError(f'unknown vendor {vendor!r}')
        with self.state.lock: self.state.faults[vendor].extend(faults)

    def requests(self, vendor: str | None = None) -> list[Request]:
        "Requests received so far (for `vendor`, or all)."
        with self.state.lock: return [r for r in self.state.requests if vendor is None or r.vendor == vendor]

    def start(self) -> VendorServer:
        self._thread.start(); return self

    def stop(self) -> None:
        self._httpd.shutdown(); self._httpd.server_close()

    def __enter__(self): return self.start()
    def __exit__(self, *exc): self.stop()
