"""A local HTTP server on 127.0.0.1 that speaks Ollama's real API, with fault injection.

Endpoints, in Ollama's wire format (https://github.com/ollama/ollama/blob/main/docs/api.md):

- ``GET /api/tags`` -> ``{"models": [{"name", "model", "modified_at", "size", "digest", "details": {...}}]}``;
- ``GET /api/version`` -> ``{"version": "0.5.7"}``;
- ``POST /api/chat`` with ``{"model", "messages", "stream", "format", "options"}``. With ``"stream": false`` the
  answer is one JSON object ``{"model", "created_at", "message": {"role": "assistant", "content"}, "done": true,
  "done_reason": "stop", "total_duration", ...}``; otherwise (Ollama's default) ``application/x-ndjson`` in
  chunked transfer encoding: one object per content fragment with ``"done": false``, then a final object with
  ``"done": true`` and the statistics. An unknown model is HTTP 404 ``{"error": "model \\"x\\" not found, try pulling
  it first"}``; a bad request is HTTP 400 ``{"error": ...}``; a mid-stream failure is an ``{"error": ...}`` line.

The assistant's content is produced by ``answer(request) -> dict`` (default: a deterministic view computed from
the prompt's numbers), serialised as JSON, as a model constrained by ``format`` would write it.

Faults are queued with ``inject(*faults)``; each ``/api/chat`` request pops one. Known faults:
``slow`` (answers after ``slow_s`` seconds), ``malformed`` (HTTP 200 with a truncated, non-JSON body),
``refusal`` (valid envelope, content is prose, not JSON), ``out_of_range`` (confidence 1.7), ``missing_field``
(no ``risk_score``), ``nan`` (a bare ``NaN`` in the content), ``contradiction`` (BUY with a negative expected return),
``error_500`` (HTTP 500 ``{"error": ...}``), ``not_found`` (HTTP 404 as for an unpulled model),
``stream_error`` (a streamed answer that breaks off with an ``{"error": ...}`` line), ``disconnect`` (socket closed
without an answer), ``length`` (the answer hit the ``num_predict`` limit: ``"done_reason":
"length"``, as Ollama reports a
generation cut off by its length limit, while the content still happens to be valid JSON). ``down()`` closes the
listening socket so connections are refused.
Every request is recorded in ``requests``.
"""
from __future__ import annotations
import json, re, socket, sys, threading, time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

FAULTS = ('slow', 'malformed', 'refusal', 'out_of_range', 'missing_field', 'nan', 'contradiction', 'error_500',
          'not_found', 'stream_error', 'disconnect', 'length')


def default_answer(request: dict) -> dict:
    "A deterministic view from the prompt: follow the 20-day return, confidence grows with its size."
    text = ' '.join(m.get('content', '') for m in request.get('messages', []))
    m = re.search(r'"return_20d":\s*(-?[0-9.eE+-]+)', text)
    r20 = float(m.group(1)) if m else 0.0
    action = 'BUY' if r20 > 0.01 else 'SELL' if r20 < -0.01 else 'HOLD'
    exp = 0.0 if action == 'HOLD' else round(r20 / 4, 6)
    return dict(action=action, confidence=round(min(0.9, 0.5 + abs(r20)), 4), risk_score=0.4, expected_return=exp,
                rationale=f'20-day return {r20:+.2%}')


@dataclass
class OllamaState:
    "What the server serves and which faults are pending."
    models: list[str] = field(default_factory=lambda: ['llama3.1:8b'])
    answer: Callable[[dict], dict] = default_answer
    faults: deque = field(default_factory=deque)
    slow_s: float = 3.0
    requests: list[dict] = field(default_factory=list)
    # e.g. the client hung up on a 'disconnect' fault
    handler_errors: list[BaseException] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _now() -> str: return datetime.now(timezone.utc).isoformat().replace('+00:00', 'Z')

def _tag(name: str) -> dict:
    return dict(name=name, model=name, modified_at='2026-11-01T10:00:00.000000000Z', size=4_920_753_328,
                digest='46e0c10c039e019119339687c3c1757cc81b9da49709a3b3924863ba87ca666e',
                details=dict(parent_model='', format='gguf', family='llama', families=['llama'], parameter_size='8.0B',
                             quantization_level='Q4_K_M'))

def _stats(n_chunks: int) -> dict:
    return dict(total_duration=4_883_583_458, load_duration=1_334_875, prompt_eval_count=26,
                prompt_eval_duration=342_546_000, eval_count=n_chunks, eval_duration=4_535_599_000)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'
    server: '_Server'

    def log_message(self, *a): pass   # quiet: the test output is for the tests

    def _json(self, status: int, obj: Any) -> None:
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header('Content-Type', 'application/json; charset=utf-8')
        self.send_header('Content-Length', str(len(body)))
        self.end_headers(); self.wfile.write(body)

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(b'%x\r\n%s\r\n' % (len(data), data)); self.wfile.flush()

    def do_GET(self):
        st = self.server.state
        with st.lock: st.requests.append(dict(method='GET', path=self.path, body=None))
        if self.path == '/api/tags': return self._json(200, dict(models=[_tag(m) for m in st.models]))
        if self.path == '/api/version': return self._json(200, dict(version='0.5.7'))
        self._json(404, dict(error='404 page not found'))

    def do_POST(self):
        st = self.server.state
        raw = self.rfile.read(int(self.headers.get('Content-Length') or 0))
        try: req = json.loads(raw)
        except json.JSONDecodeError: req = None
        with st.lock:
            st.requests.append(dict(method='POST', path=self.path, body=req))
            fault = st.faults.popleft() if st.faults else None
        if self.path != '/api/chat': return self._json(404, dict(error='404 page not found'))
        if not isinstance(req, dict): return self._json(400, dict(error='invalid request body'))
        model = req.get('model')
        if not model: return self._json(400, dict(error='model is required'))
        if fault == 'disconnect':
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR); return
        if fault == 'not_found' or model not in st.models:
            return self._json(404, dict(error=f'model "{model}" not found, try pulling it first'))
        if fault == 'error_500':
            return self._json(500, dict(error='llama runner process has terminated: signal: killed'))
        if fault == 'slow': time.sleep(st.slow_s)
        if fault == 'malformed':
            body = b'{"model": "%s", "message": {"role": "assistant", "content": "{\\"act' % model.encode()
            self.send_response(200)
            self.send_header('Content-Type', 'application/json; charset=utf-8')
            self.send_header('Content-Length', str(len(body)))
            self.end_headers(); self.wfile.write(body); return
        content = self._content(req, fault)
        if req.get('stream', True): return self._stream(model, content, fault)
        self._json(200, dict(model=model, created_at=_now(), message=dict(role='assistant', content=content), done=True,
                             done_reason='length' if fault == 'length' else 'stop', **_stats(1)))

    def _content(self, req: dict, fault: str | None) -> str:
        "The assistant's text for this request, spoiled as the fault asks."
        if fault == 'refusal': return "I'm sorry, but I can't provide investment advice or trading recommendations."
        ans = dict(self.server.state.answer(req))
        if fault == 'out_of_range': ans['confidence'] = 1.7
        if fault == 'missing_field': ans.pop('risk_score', None)
        if fault == 'contradiction': ans.update(action='BUY', expected_return=-0.03)
        text = json.dumps(ans)
        if fault == 'nan': text = re.sub(r'"confidence": [^,}]+', '"confidence": NaN', text)
        return text

    def _stream(self, model: str, content: str, fault: str | None) -> None:
        "NDJSON in chunked encoding, a few characters per line, as Ollama streams tokens."
        self.send_response(200)
        self.send_header('Content-Type', 'application/x-ndjson')
        self.send_header('Transfer-Encoding', 'chunked')
        self.end_headers()
        pieces = [content[i:i + 7] for i in range(0, len(content), 7)] or ['']
        for k, p in enumerate(pieces):
            if fault == 'stream_error' and k == len(pieces) // 2:
                self._chunk(
                    json.dumps(dict(error='an error was encountered while running the model: unexpected EOF')).encode()
                    + b'\n'
                )
                break
            self._chunk(json.dumps(dict(model=model, created_at=_now(), message=dict(role='assistant', content=p),
                                        done=False)).encode() + b'\n')
        else:
            self._chunk(json.dumps(dict(model=model, created_at=_now(), message=dict(role='assistant', content=''),
                                        done=True,
                                        done_reason='length' if fault == 'length' else 'stop',
                                        **_stats(len(pieces)))).encode() + b'\n')
        self._chunk(b'')


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    def __init__(self, addr, state: OllamaState):
        super().__init__(addr, _Handler)
        self.state, self.conns = state, set()

    def get_request(self):
        conn, addr = super().get_request()
        self.conns.add(conn)          # so that down() can drop kept-alive connections, as a dying server does
        return conn, addr

    def handle_error(self, request, client_address) -> None:
        "Record a handler's error for the tests to inspect instead of printing it to stderr."
        with self.state.lock: self.state.handler_errors.append(sys.exc_info()[1])

    def drop_connections(self) -> None:
        for c in list(self.conns):
            try: c.shutdown(socket.SHUT_RDWR)
            except OSError: pass      # already closed by its handler
            c.close()
        self.conns.clear()


class OllamaServer:
    "An Ollama stand-in on 127.0.0.1 (port chosen by the OS); use as a context manager."
    def __init__(self, models: list[str] | None = None, answer: Callable[[dict], dict] | None = None,
                 slow_s: float = 3.0):
        self.state = OllamaState(slow_s=slow_s)
        if models is not None: self.state.models = list(models)
        if answer is not None: self.state.answer = answer
        self._srv: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> 'OllamaServer':
        "Listen and serve in a background thread."
        self._srv = _Server(('127.0.0.1', 0), self.state)
        self.port = self._srv.server_address[1]
        self._thread = threading.Thread(target=self._srv.serve_forever, name='ollama-test-server', daemon=True)
        self._thread.start()
        return self

    @property
    def url(self) -> str: return f'http://127.0.0.1:{self.port}'

    def inject(self, *faults: str) -> None:
        "Queue faults; each chat request takes the next one."
        for f in faults:
            if f not in FAULTS: raise ValueError(f'unknown fault {f!r}; known: {FAULTS}')
        with self.state.lock: self.state.faults.extend(faults)

    @property
    def requests(self) -> list[dict]:
        with self.state.lock: return list(self.state.requests)

    def chat_requests(self) -> list[dict]:
        "The bodies of the chat requests received so far."
        return [r['body'] for r in self.requests if r['path'] == '/api/chat']

    def down(self) -> None:
        "Stop serving and close the socket: later connections are refused."
        if self._srv is not None:
            self._srv.shutdown(); self._srv.server_close(); self._srv.drop_connections(); self._srv = None

    def __enter__(self) -> 'OllamaServer': return self.start()
    def __exit__(self, *exc) -> None: self.down()


def refused_url() -> str:
    "The URL of a port on 127.0.0.1 where nothing listens (bound, then closed)."
    s = socket.socket(); s.bind(('127.0.0.1', 0)); port = s.getsockname()[1]; s.close()
    return f'http://127.0.0.1:{port}'
