# ruff: noqa: E501  (a one-off tool: its templates and notes are long lines; the cells it writes are not)
"""Split 04_store_db's `Store` by concern, in place and re-runnably: `python split_store.py [nbs/04_store_db.ipynb]`.

What it does (each step is skipped when already done, so running it twice changes nothing; cells are found by id,
so it also applies to a notebook whose journal write-path cells were edited meanwhile):

1. the head schema (`T`, `META`) is built lazily, on first use, not on import;
2. `class Store` becomes `class Database` (engines, clock, units), and a new cell declares the parts
   `MarketData`, `Journal`, `Account`, `OpsRecords` (each usable on its own over a shared `Database`) and
   `Store(Database, MarketData, Journal, Account, OpsRecords)`, which still offers every method;
3. every `@patch def m(self: Store, ...)` is re-targeted to its part (unknown names stay on `Store`: they still
   work, and are listed so someone can place them);
4. long cells outside the journal's write path are split at their top-level definitions, with a sentence each;
5. the cells are grouped by part under `##` headings (a few blocks move);
6. a static check: a part's method may use its own part's methods and the database's, nothing of another part.

Then: nbdev-export, tools/check_sync.py, tools/run_nbs.py nbs/04_store_db.ipynb.
"""
import ast, json, re, sys
from pathlib import Path

NB = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).parent / 'nbs' / '04_store_db.ipynb')
nb = json.loads(NB.read_text(encoding='utf-8'))
cells = nb['cells']
changed = []

PARTS = {
    'MarketData': 'upsert_prices prices price_range price_sources tickers upsert_features features save_forecast save_signals '
                  'signals save_signal_batch',
    'Journal': 'journal_orders order_view journal_order update_order order orders order_events record_fill fills '
               'journal_submission record_order_outcome journaled_ids',
    'Account': 'set_positions positions record_equity equity trading_state set_trading_state trading_states save_risk_action '
               'update_risk_action risk_action risk_actions',
    'OpsRecords': 'save_validation validations add_alert alerts acknowledge_alert start_run finish_run runs heartbeat heartbeats '
                  'set_control get_control controls',
    'Database': 'unit after_commit on_rollback lend_unit transaction reading counting',
}
OWNER = {m: p for p, ms in PARTS.items() for m in ms.split()}
SHARED = ('url', 'clock', 'engine', 'reader', 'revision', 'dialect', 'close', '_now', 'unit', 'after_commit', 'on_rollback',
          'lend_unit', 'transaction', 'reading', 'counting')
SHARED_SRC = '(' + ',\n           '.join(', '.join(repr(n) for n in SHARED[k:k + 7]) for k in range(0, len(SHARED), 7)) + ')'

# ---------------------------------------------------------------------------------------------------- helpers
def src(c) -> str: return ''.join(c['source'])

def setsrc(c, s: str, why: str) -> None:
    if src(c) != s: c['source'] = s.splitlines(keepends=True); changed.append(why)

def idx(cid: str) -> int | None: return next((k for k, c in enumerate(cells) if c.get('id') == cid), None)

def md(cid: str, text: str) -> dict: return {'cell_type': 'markdown', 'id': cid, 'metadata': {}, 'source': text.splitlines(keepends=True)}

def code(cid: str, text: str) -> dict:
    return {'cell_type': 'code', 'execution_count': None, 'id': cid, 'metadata': {}, 'outputs': [],
            'source': text.splitlines(keepends=True)}

def insert_after(anchor: str, *new: dict) -> None:
    "Insert `new` right after cell `anchor` unless the first of them exists already."
    if idx(new[0]['id']) is not None: return
    k = idx(anchor)
    if k is None: print(f'warning: no cell {anchor}; {new[0]["id"]} not inserted'); return
    cells[k + 1:k + 1] = list(new); changed.append(f'insert {new[0]["id"]}')

def insert_before(anchor: str, *new: dict) -> None:
    if idx(new[0]['id']) is not None: return
    k = idx(anchor)
    if k is None: print(f'warning: no cell {anchor}; {new[0]["id"]} not inserted'); return
    cells[k:k] = list(new); changed.append(f'insert {new[0]["id"]}')

def move_after(first: str, last: str, anchor: str) -> None:
    "Move the cells from `first` to `last` (inclusive) right after `anchor`, unless they are there already."
    a, b, k = idx(first), idx(last), idx(anchor)
    if None in (a, b, k) or b < a: print(f'warning: cannot move {first}..{last} after {anchor}'); return
    if a == k + 1: return
    block = cells[a:b + 1]
    del cells[a:b + 1]
    k = idx(anchor)
    cells[k + 1:k + 1] = block; changed.append(f'move {first}..{last}')

def set_markdown(cid: str, text: str) -> None:
    k = idx(cid)
    if k is None: print(f'warning: no cell {cid}'); return
    setsrc(cells[k], text, f'markdown {cid}')

def blocks(body: list[str]) -> tuple[list[str], list[tuple[str, list[str]]]]:
    "A cell's lines split into its head (before the first definition) and its top-level definitions (name, lines)."
    starts = [k for k, ln in enumerate(body) if re.match(r'(@|def |async def |class )', ln)
              and not (k and re.match(r'@', body[k - 1]))]
    head = body[:starts[0]] if starts else body
    out = []
    for a, b in zip(starts, starts[1:] + [len(body)]):
        ln = body[a:b]
        name = re.search(r'(?:def|class) (\w+)', '\n'.join(ln)).group(1)
        out.append((name, ln))
    return head, out

def split_cell(cid: str, groups: list[tuple[list[str], str]]) -> None:
    """Split exported cell `cid` into one cell per group of definition names, each after its sentence (the first
    group keeps the id and the cell's head; definitions not named stay with the first group)."""
    k = idx(cid)
    if k is None: print(f'warning: no cell {cid} to split'); return
    if idx(f'{cid}-s1') is not None: return
    lines = src(cells[k]).split('\n')
    assert lines[0].startswith('#| export'), cid
    head, defs = blocks(lines[1:])
    names = {n for n, _ in defs}
    wanted = [n for g, _ in groups for n in g]
    missing = [n for n in wanted if n not in names]
    if missing: print(f'warning: {cid} has no {missing}; not split'); return
    parts = [list(head)] + [[] for _ in groups[1:]]
    for n, ln in defs:
        g = next((j for j, (ns, _) in enumerate(groups) if n in ns), 0)
        parts[g] += ln
    new = []
    for j, (p, (_, why)) in enumerate(zip(parts, groups)):
        while p and not p[-1].strip(): p.pop()
        body = '\n'.join(['#| export'] + p)
        if j == 0: setsrc(cells[k], body, f'split {cid}'); continue
        new += [md(f'{cid}-m{j}', why), code(f'{cid}-s{j}', body)]
    cells[k + 1:k + 1] = new

# ---------------------------------------------------------------------------------------------------- 1. lazy schema
LAZY = '''#| export
from threading import Lock

def _current_metadata() -> sa.MetaData:
    "Build the head schema by running the migrations against an in-memory SQLite database."
    eng = sa.create_engine('sqlite://')
    migrate(eng, quiet=True)
    md = sa.MetaData()
    md.reflect(eng)
    eng.dispose()
    # reflected SQLite types lose our UTC decorator: put it back for datetime columns
    for t in md.tables.values():
        for c in t.columns:
            if isinstance(c.type, sa.DateTime): c.type = UTCDateTime()
            elif isinstance(c.type, sa.Float): c.type = Num
    return md'''

LAZY_T = '''#| export
class _HeadSchema(dict):
    "The head schema's tables by name, built on first use (a `dict` once built: `T['orders']` costs a dict lookup)."
    def __init__(self): super().__init__(); self._md, self._lock = None, Lock()
    @property
    def metadata(self) -> sa.MetaData:
        "The head schema's `MetaData` (built now if it was not yet; once, whichever thread asks first)."
        with self._lock:
            if self._md is None: md = _current_metadata(); self.update(md.tables); self._md = md
        return self._md
    @property
    def built(self) -> bool: return self._md is not None
    def __missing__(self, name: str) -> sa.Table:
        if self._md is not None: raise KeyError(name)
        return self.metadata.tables[name]
    def __iter__(self): self.metadata; return super().__iter__()
    def __len__(self) -> int: self.metadata; return super().__len__()
    def __contains__(self, name) -> bool: self.metadata; return super().__contains__(name)
    def keys(self): self.metadata; return super().keys()
    def values(self): self.metadata; return super().values()
    def items(self): self.metadata; return super().items()
    def get(self, name, default=None): self.metadata; return super().get(name, default)
    def __repr__(self) -> str: return f"T({sorted(self) if self.built else 'not built yet'})"

T = _HeadSchema()     # `META` is not in `__all__` (it is not a name until asked for): import it by name

def __getattr__(name: str):
    "`META` (the head schema's `MetaData`) is built on first use, like `T`."
    if name == 'META': return T.metadata
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')'''

LAZY_EX = '''assert not T.built                       # nothing was built while the module loaded
test_eq(T['orders'].name, 'orders'); assert T.built
test_eq(sorted(t for t in T if not t.startswith('wf_')),
        ['alerts', 'checkpoints', 'controls', 'equity', 'features', 'fills', 'forecasts', 'heartbeats', 'order_events',
         'orders', 'paper_accounts', 'paper_fills', 'paper_holdings', 'paper_marks', 'paper_orders', 'positions', 'prices',
         'risk_actions', 'runs', 'schema_version', 'service_beats', 'signals', 'trading_states', 'validation_results'])
test_fail(lambda: T['no_such_table'], exc=KeyError)
list(T['orders'].c.keys())[:6]'''

k = idx('ea44bccb')
if k is not None and 'META = _current_metadata()' in src(cells[k]):
    setsrc(cells[k], LAZY, 'lazy metadata')
    cells[k + 1:k + 1] = [md('ea44bccc', "`T` holds the tables by name. It is filled the first time a table is asked for, so importing "
                                         "the module (every module that queries imports it) runs no migration; after that a lookup is "
                                         "a plain `dict` lookup. `META`, the module attribute, is built the same way."),
                          code('ea44bccd', LAZY_T)]
    changed.append('lazy T')
k = idx('541bc58f')
if k is not None: setsrc(cells[k], LAZY_EX, 'lazy example')
set_markdown('b36dc493', '''## The current schema, for queries

Reflecting at start-up would cost a round trip per table, and running the migrations at import would cost every
process that imports the store (most do) a database it never uses: the current shape is built once, when a
query first needs it, and a test checks it against what the migrations build.''')

# `migrate(..., quiet=True)`: building the head schema is not news for the log
k = idx('e55c6fcf')
if k is not None:
    s = src(cells[k])
    s = s.replace("def migrate(engine: sa.Engine, target: str = HEAD, probe: sa.Engine | None = None) -> str:\n"
                  '    "Apply pending migrations up to `target` in one transaction; return the revision reached (`probe`: a reader '
                  'engine to look first)."',
                  "def migrate(engine: sa.Engine,  # the writers' engine\n"
                  "            target: str = HEAD,  # the revision to reach\n"
                  "            probe: sa.Engine | None = None,  # a readers' engine to look first (no write lock if at `target`)\n"
                  "            quiet: bool = False,  # no log line per migration (building the head schema in memory)\n"
                  '            ) -> str:\n'
                  '    "Apply pending migrations up to `target` in one transaction; return the revision reached."')
    s = s.replace("            log.info('migrating schema to %s: %s', m.revision, m.description)",
                  "            if not quiet: log.info('migrating schema to %s: %s', m.revision, m.description)")
    setsrc(cells[k], s, 'migrate quiet')

# ---------------------------------------------------------------------------------------------------- 2. Database and parts
DATABASE = '''class Database:
    "One database: the writers' and readers' engines, the clock that stamps rows, and the units of work open on it."
    def __init__(self,
                 url: str,  # `sqlite:///path.db`, `sqlite://` (in memory) or `postgresql://...`
                 busy_timeout_ms: int = 30_000,  # how long a SQLite writer waits for the lock
                 clock: Clock | None = None,  # stamps audit times (`loaded_at`, `created_at`); the system clock if None
                 migrate_schema: bool = True):  # bring the schema to the head on opening
        self.url, self.clock = url, clock or SystemClock()
        if url.startswith('sqlite:///') and url not in ('sqlite:///', 'sqlite:///:memory:'):
            Path(url[len('sqlite:///'):]).parent.mkdir(parents=True, exist_ok=True)
        self.engine = make_engine(url, busy_timeout_ms)
        separate = url.startswith('sqlite') and not _is_memory(url)     # deferred reads beside a WAL file's writer
        self.reader = make_engine(url, busy_timeout_ms, immediate=False) if separate else self.engine
        self.revision = migrate(self.engine, probe=self.reader) if migrate_schema else None

    @classmethod
    def from_settings(cls,
                      settings,  # a loaded `Settings`: its `[store]` section names the database
                      clock: Clock | None = None,  # stamps audit times; the system clock if None
                      ) -> Database:
        "The store the settings name."
        return cls(settings.store.url, settings.store.busy_timeout_ms, clock)

    @property
    def db(self) -> Database: return self      # a database is its own: a `Store` is every part over itself
    @property
    def dialect(self) -> str: return self.engine.dialect.name
    def __repr__(self):
        url = self.engine.url.render_as_string(hide_password=True)
        return f"{type(self).__name__}({url!r}, revision={self.revision!r})"
    def close(self) -> None: self.engine.dispose(); self.reader.dispose()
    def _now(self) -> datetime: return self.clock.now()'''

PARTS_CELL = '''#| export
class _Shared:
    "A part's view of its database's attribute (an instance's own attribute, as on `Store`, comes first)."
    def __init__(self, name: str): self.name = name
    def __get__(self, obj, owner=None): return self if obj is None else getattr(obj.db, self.name)

class StorePart:
    "One concern's methods over a shared `Database`: its engines, clock and units are the database's."
    def __init__(self, db: Database):  # the database this part reads and writes (a `Store` will do)
        self.db = db
    def __repr__(self): return f'{type(self).__name__}({self.db!r})'

for _n in %s: setattr(StorePart, _n, _Shared(_n))

class MarketData(StorePart): "Prices, features, forecasts and signals."
class Journal(StorePart): "The order journal: orders, their events and fills (and what an order's outcome moves)."
class Account(StorePart): "Positions, the equity curve, the trading state and the risk actions."
class OpsRecords(StorePart): "What operations leave: validation results, alerts, runs, heartbeats, operator controls."

class Store(Database, MarketData, Journal, Account, OpsRecords):
    "The workbench's database with every part's methods: prices to heartbeats, on one object."''' % (SHARED_SRC,)

PARTS_MD = '''The store's methods fall into four concerns, each a small class: `MarketData` (prices, features,
forecasts, signals), `Journal` (orders, events, fills), `Account` (positions, equity, trading state, risk
actions) and `OpsRecords` (validation results, alerts, runs, heartbeats, controls). Each is a `StorePart`
over a `Database`, which holds the engines, the clock and the units of work; a part on its own, `Journal(db)`,
reads and writes through its database, so several parts over one database share its engines and its open unit.

`Store` is a `Database` that *is* all four parts (mixins, not composition): every caller keeps calling
`store.prices(...)` or `store.journal_submission(...)`, the methods are found by ordinary attribute lookup
(no forwarding layer on the order path, where each microsecond shows), a unit is keyed on the one object,
and tab completion and the docs list them. A part's method uses only its own part's methods and the
database's (a check in `split_store.py` and the tests hold that), so the split is real, not a label.

A part reaches its database's engines, clock and units through `_Shared`, a non-data descriptor: on a part
alone it reads `self.db.<name>`; on `Store` the instance's own attributes and `Database`'s methods come first in
the lookup, so the store pays nothing for it.'''

k = idx('ea763135')
if k is not None and 'class Store:' in src(cells[k]):
    s = src(cells[k])
    a = s.index('class Store:')
    setsrc(cells[k], s[:a].rstrip('\n'), 'upsert alone')
    cells[k + 1:k + 1] = [md('ea763136', 'A `Database` is one engine for writes and one for reads (the same one off SQLite files), '
                                         'the injected clock, and the units of work open on it.'),
                          code('ea763137', '#| export\n' + DATABASE),
                          md('ea763138', PARTS_MD), code('ea763139', PARTS_CELL)]
    changed.append('Database and parts')
set_markdown('138efc80', '''## The `Database`, its parts, and the `Store`

One database, one engine for writes, short transactions. Audit stamps (`loaded_at`, `created_at`) come from
the injected clock, like every other time in the workbench. `_upsert` is the one insert-or-update every part
uses:''')

# the example: the parts over one database, and `Store` with them all
PARTS_EX = '''from trading_workbench.core.clock import FixedClock
clock = FixedClock(datetime(2018, 2, 7, 21, tzinfo=timezone.utc))
db = Database(f'sqlite:///{tempfile.mkdtemp()}/parts.db', clock=clock)
market, journal, ops = MarketData(db), Journal(db), OpsRecords(db)
test_eq((market.engine, journal.reader), (db.engine, db.reader))        # one database under all of them
market.upsert_prices('KO', read_bundled('KO').iloc[-3:], 'bundled')
def order_and_alert(fail: bool):
    with db.unit():                                                      # one unit for both parts: all or nothing
        journal.journal_submission(Order('parts-1', 'KO', 'BUY', 10, limit_price=45.0))
        ops.add_alert('info', 'parts-demo', 'journaled in the same unit')
        if fail: raise RuntimeError('failed before the commit')
test_fail(lambda: order_and_alert(True), contains='before the commit')
test_eq((journal.order('parts-1'), len(ops.alerts())), (None, 0))      # both rolled back
order_and_alert(False)
test_eq([c.__name__ for c in Store.__mro__[:7]],
        ['Store', 'Database', 'MarketData', 'Journal', 'Account', 'OpsRecords', 'StorePart'])
print(market.prices('KO').close.tolist(), journal.order('parts-1')['state'], ops.alerts().message.tolist())
db.close()'''

# the cells this script wrote follow its templates (so a template changed here reaches a notebook split earlier)
for cid, text in (('ea763137', '#| export\n' + DATABASE), ('ea763138', PARTS_MD), ('ea763139', PARTS_CELL)):
    k = idx(cid)
    if k is not None: setsrc(cells[k], text, f'template {cid}')

# ---------------------------------------------------------------------------------------------------- 3. methods to their parts
unknown = []
for c in cells:
    if c['cell_type'] != 'code': continue
    s = src(c)
    def retarget(m):
        name = m.group(2)
        if name in OWNER: return f'{m.group(1)}{OWNER[name]}'
        unknown.append(name); return m.group(0)
    new = re.sub(r'(def (\w+)\(self: )Store\b', retarget, s)
    if new != s: setsrc(c, new, 'retarget')
if unknown: print('note: these methods stay on Store (no part named for them in PARTS):', sorted(set(unknown)))

# ---------------------------------------------------------------------------------------------------- 4. long cells split
# the journal's write path (unit, prepared writes, journal_*, record_*, order_view) is left as it is
M0001_SPLIT = {'_m0001_market': ('prices', 'features', 'forecasts', 'signals'),
               '_m0001_journal': ('orders', 'order_events', 'fills'),
               '_m0001_account': ('positions', 'equity'),
               '_m0001_ops': ('validation_results', 'checkpoints', 'alerts', 'runs', 'heartbeats')}
M0001_WHY = {'_m0001_market': 'The initial schema by part. Market data: bars per ticker and day, feature values as JSON per '
                              'builder version, forecasts and signals with their provenance.',
             '_m0001_journal': 'The order journal: one row per order in its current state, its history of events, the fills.',
             '_m0001_account': "The account: positions and the equity curve.",
             '_m0001_ops': 'What operations leave: validation results, checkpoints, alerts, runs and heartbeats.'}
k = idx('648413d1')
if k is not None and idx('648413d1-s1') is None and '"Initial schema."\n    C = sa.Column\n' in src(cells[k]):
    s = src(cells[k])
    a, b = s.index('def _m0001('), s.index('def _m0002(')
    body = s[a:b].rstrip('\n').split('\n')[3:]           # after the def line, its docstring and `C = sa.Column`
    stmts, cur = {}, None
    for ln in body:
        m = re.match(r"    op\.create_table\('(\w+)'", ln)
        if m: cur = m.group(1); stmts[cur] = []
        stmts[cur].append(ln)
    assert sorted(stmts) == sorted(t for ts in M0001_SPLIT.values() for t in ts), sorted(stmts)
    setsrc(cells[k], s[:a].rstrip('\n'), 'Migration alone')
    new = []
    for j, (fn, tables) in enumerate(M0001_SPLIT.items(), 1):
        lines = [f'def {fn}(op: Operations):', f'    "Initial schema: {", ".join(tables)}."', '    C = sa.Column']
        lines += [ln for t in tables for ln in stmts[t]]
        new += [md(f'648413d1-m{j}', M0001_WHY[fn]), code(f'648413d1-s{j}', '#| export\n' + '\n'.join(lines))]
    rest = s[b:].rstrip('\n')
    new += [md('648413d1-m5', 'Revision 0001 is the four together, in that order; 0002 adds the operator controls.'),
            code('648413d1-s5', '#| export\ndef _m0001(op: Operations):\n    "Initial schema."\n'
                                f'    for part in ({", ".join(M0001_SPLIT)}): part(op)\n\n' + rest)]
    cells[k + 1:k + 1] = new
    changed.append('m0001 by part')

split_cell('8e38e577', [(['_check_bar_rows'], ''),
                        (['_jsonable'], 'JSON columns take plain values: NaN becomes null, infinity or an object without a JSON '
                                        'form is a `BadRowError` naming the row.')])
split_cell('e55c6fcf', [(['schema_revision'], ''),
                        (['migrate'], '`migrate` reads the revision, refuses a database newer than the code, and applies '
                                      'the missing steps in one transaction.')])
split_cell('1c65a4c1', [(['upsert_prices'], ''),
                        (['prices', 'price_range'], 'Reads return a bar frame (empty, with the right columns, when nothing '
                                                    'is stored) or the stored range.'),
                        (['price_sources', 'tickers'], 'Which source served which bars, and which tickers are stored.')])
split_cell('3a926662', [(['upsert_features'], ''),
                        (['features'], 'Read back, a missing value is NaN again.')])
split_cell('6c5b51f9', [(['save_forecast'], ''),
                        (['save_signals'], 'Signals are validated as a batch first: one bad one and none is written.'),
                        (['signals'], 'Stored signals come back as a frame, oldest first, by run or ticker.')])
split_cell('5eed0c02', [(['_provenance_json'], ''),
                        (['save_signal_batch'], 'The batch itself: one statement, ids in the order given.')])
split_cell('c8b3b3cd', [(['set_positions'], ''), (['positions'], "Read back as `Position`s, by ticker.")])
split_cell('47338705', [(['record_equity'], ''), (['equity'], 'The curve, oldest first.')])
split_cell('46528626', [(['save_validation'], ''), (['validations'], 'All of them, or one run\'s, in the order stored.')])
split_cell('62a7cb68', [(['add_alert'], ''), (['alerts', 'acknowledge_alert'], 'Newest first, all or only those not yet '
                                                                                'acknowledged; acknowledging is one update.')])
split_cell('cd3179ff', [(['start_run'], ''),
                        (['finish_run'], 'A run ends with one of the known statuses and its report; finishing a run that '
                                         'never started is an error, not a silent no-op.'),
                        (['runs'], 'Recent runs, newest first, optionally of one kind.')])
split_cell('0d2ab011', [(['heartbeat'], ''), (['heartbeats'], 'The last beat of each component.')])
split_cell('bcb460c1', [(['set_control'], ''),
                        (['get_control', 'controls'], 'A control never set reads as its default; `controls` lists a '
                                                      'family of them by prefix.')])
split_cell('0a92046c', [(['TradingState', 'StateRecord'], ''),
                        (['_state_row', 'trading_state'], 'The current state is the newest row, or ACTIVE when none was '
                                                          'ever written.'),
                        (['set_trading_state'], 'A change is a compare-and-set: with `expected`, nothing is written if '
                                                'someone else moved the state first (PostgreSQL serialises writers with '
                                                'an advisory lock, SQLite with its write lock).'),
                        (['trading_states'], 'The history, newest first.')])
split_cell('df21c592', [(['save_risk_action'], ''),
                        (['update_risk_action'], 'An action moves through the known statuses; an action never journaled '
                                                 'is an error.'),
                        (['risk_action', 'risk_actions'], 'One action by id, or the newest, optionally of some statuses.')])
split_cell('55fa7015', [(['SQLCount'], ''), (['counting'], '`counting` listens to the engines\' events for the block.')])

# ---------------------------------------------------------------------------------------------------- 5. cells grouped by part
insert_before('b5181c1a', md('b5181c19', '## Market data (`MarketData`)'))
set_markdown('8e342acb', src(cells[idx('8e342acb')]).replace('### One write transaction for a piece of work',
                                                             '## One write transaction for a piece of work (`Database`)', 1))
set_markdown('40671a44', src(cells[idx('40671a44')]).replace('### The order journal and fills',
                                                             '## The order journal (`Journal`)', 1))
insert_before('abb9f4e2', md('abb9f4e1', 'Many orders at once (a risk action\'s batch) are journaled in one transaction; '
                                         'those already journaled are skipped, so a retried action adds nothing.'))
move_after('abb9f4e1', '23a85d18', 'ba1b47cb')                 # journal_orders joins the journal
set_markdown('dfd7665f', '''## The account (`Account`)

An account's positions are replaced as a whole, so a position that was closed does not linger here.''')
move_after('3908618b', 'e5afd1da', 'a91f4913')                 # trading state and risk actions join the account
set_markdown('3908618b', src(cells[idx('3908618b')]).replace('### Trading state and risk actions\n',
                                                             '### Trading state and risk actions\n', 1))
insert_before('c00b89a5', md('c00b89a4', '### What an order\'s checks read (`Journal`)'))
move_after('c00b89a4', '1837c107', 'e5afd1da')                 # what the order manager reads: journal and account
insert_before('d15899a3', md('d15899a2', '## Operations (`OpsRecords`)'))
insert_before('df21c592', md('df21c591', 'A risk action is journaled when it is previewed: its id makes that idempotent (a '
                                         'monitor proposing the same action twice writes it once), and its status moves '
                                         'as it runs.'))
insert_before('bba4c7e9', md('bba4c7e8', '## Counting what the database runs (`Database`)'))
SUMMARY = '''{p.__name__: ' '.join(sorted(n for n, v in vars(p).items() if callable(v) and not n.startswith('_')))
 for p in (Database, MarketData, Journal, Account, OpsRecords)}'''
insert_before('6402990b', md('ea76313b', 'The parts work on their own over one database (its engines, clock and unit), '
                                        'and `Store` is all of them:'), code('ea76313a', PARTS_EX),
              md('6402990a', 'Every method, by part (all of them on `Store`):'), code('64029009', SUMMARY))

# ---------------------------------------------------------------------------------------------------- 7. examples show their result
# the demo store gets a fixed clock (its audit stamps appear in the outputs); each example ends with what it made
def example_sub(cid: str, old: str, new: str) -> None:
    k = idx(cid)
    if k is None: print(f'warning: no cell {cid}'); return
    s = src(cells[k])
    if new not in s and old in s: setsrc(cells[k], s.replace(old, new, 1), f'example {cid}')

def example_tail(cid: str, line: str) -> None:
    k = idx(cid)
    if k is None: print(f'warning: no cell {cid}'); return
    s = src(cells[k]).rstrip('\n')
    if not s.endswith('\n' + line): setsrc(cells[k], s + '\n' + line, f'example {cid}')

example_sub('04ae7ef5', "st = Store(f'sqlite:///{tmp}/demo.db')",
            "from trading_workbench.core.clock import FixedClock\n"
            "st = Store(f'sqlite:///{tmp}/demo.db', clock=FixedClock(datetime(2018, 2, 7, 21, 30, tzinfo=timezone.utc)))")
example_tail('567e0dd2', "back.tail(3).round(4)")
example_tail('5eed0c03', "st.signals('batch')[['id', 'ticker', 'model', 'action', 'confidence', 'horizon', 'as_of']]")
example_tail('20d26828', "said")
example_tail('1a78d334', "pd.DataFrame(st.order_events(o.client_order_id))[['state', 'time', 'message']]")
example_tail('ba1b47cb', "st.fills(o3.client_order_id)")
example_tail('23a85d18', "pd.DataFrame(st.orders(run_id='risk-1'))[['client_order_id', 'ticker', 'side', 'quantity', 'state']]")
example_tail('bf6a5194', "st.positions('PAPER')")
example_tail('a91f4913', "st.equity('PAPER')")
example_tail('e5afd1da', "[(s.id, s.state.value, s.reason) for s in st.trading_states()]")
example_tail('1837c107', "state")
example_tail('906e56e7', "st.add_alert('warning', 'risk', 'gross exposure near its limit')\n"
                         "st.alerts()[['id', 'time', 'severity', 'source', 'message', 'acknowledged']]")
example_tail('d61f998e', "st.runs()[['run_id', 'kind', 'status', 'params', 'report', 'started_at']]")
example_tail('4b54fff1', "st.heartbeats()")
example_sub('4f243523', "None)\nst", "None)\nst.controls('flag.')")
example_tail('e727f3c5', "n")

# ---------------------------------------------------------------------------------------------------- 8. docments
# one comment per parameter (nbdev's docments) on the public functions outside the journal's write path
DOCS = {
    'schema_revision': {'conn': 'a connection to the database'},
    'make_engine': {'url': '`sqlite:///path.db`, `sqlite://` or `postgresql://...`',
                    'busy_timeout_ms': 'how long a SQLite connection waits for a lock',
                    'immediate': "writers' engine: every transaction begins IMMEDIATE (takes the write lock)"},
    'upsert_prices': {'ticker': 'the bars\' ticker', 'bars': 'a bar frame (date index, OHLCV columns)',
                      'source': 'the vendor that served them'},
    'prices': {'ticker': 'the ticker', 'start': 'first date (inclusive); None: from the first bar',
               'end': 'last date (inclusive); None: to the last bar'},
    'price_range': {'ticker': 'the ticker'},
    'price_sources': {'ticker': 'one ticker, or None for all'},
    'upsert_features': {'ticker': 'the ticker', 'features': 'date index, one column per feature (NaN is stored as null)',
                        'version': "the builder's version"},
    'features': {'ticker': 'the ticker', 'version': "the builder's version", 'start': 'first date (inclusive) or None',
                 'end': 'last date (inclusive) or None'},
    'save_forecast': {'run_id': 'the run that made it', 'ticker': 'the ticker', 'as_of': 'the time the forecast is made at',
                      'forecast': 'the forecast'},
    'save_signals': {'run_id': 'the run that made them', 'signals': 'the signals, validated before anything is written'},
    'signals': {'run_id': 'one run, or None for all', 'ticker': 'one ticker, or None for all'},
    'save_signal_batch': {'run_id': 'the run that made them', 'signals': 'the signals, validated before anything is written'},
    'set_positions': {'account': 'the account', 'positions': 'its whole book (each ticker once)',
                      'as_of': 'when the book was read'},
    'positions': {'account': 'the account'},
    'record_equity': {'account': 'the account', 'as_of': 'the time of the point (a second one at that time corrects it)',
                      'cash': 'cash then', 'equity': 'equity then'},
    'equity': {'account': 'the account'},
    'trading_states': {'limit': 'at most this many'},
    'set_trading_state': {'state': 'the new state', 'reason': 'why, for the operator (required)',
                          'trigger': 'what caused it (a limit name, `operator`)', 'inputs': 'the figures behind the change',
                          'by': 'who changed it', 'expected': 'change only if the current state still is this one'},
    'save_risk_action': {'action_id': 'the action\'s id (idempotent)', 'kind': 'what it does (e.g. REDUCE_POSITIONS)',
                         'trigger': 'the breach that proposed it', 'preview': 'what it would do',
                         'state_id': 'the trading-state change it belongs to', 'by': 'who journaled it'},
    'update_risk_action': {'action_id': 'the action', 'status': 'one of `RISK_ACTION_STATUSES`',
                           'result': 'its result so far', 'by': 'who moved it'},
    'risk_action': {'action_id': 'the action'},
    'risk_actions': {'statuses': 'only these statuses, or None for all', 'limit': 'at most this many'},
    'save_validation': {'run_id': 'the validation run', 'model': 'the model', 'ticker': 'the ticker, or None when pooled',
                        'metrics': 'the figures (JSON-safe; NaN becomes null)', 'details': 'anything more, or None'},
    'validations': {'run_id': 'one run, or None for all'},
    'add_alert': {'severity': 'one of `SEVERITIES`', 'source': 'the component that raises it', 'message': 'what the operator must know',
                  'time': 'when; None: now by the clock'},
    'alerts': {'active_only': 'only those not yet acknowledged', 'limit': 'at most this many'},
    'acknowledge_alert': {'alert_id': 'the alert'},
    'start_run': {'run_id': 'the run', 'kind': 'daily, backtest, validation, ...', 'params': 'what it was asked to do'},
    'finish_run': {'run_id': 'a started run', 'status': 'one of `RUN_STATUSES`', 'report': 'what it did'},
    'runs': {'kind': 'one kind, or None for all', 'limit': 'at most this many'},
    'heartbeat': {'component': 'who is alive', 'status': 'its own word on its health', 'detail': 'anything more'},
    'set_control': {'name': 'the control (e.g. `flag.enable_llm`)', 'value': 'any JSON value', 'by': 'who set it'},
    'get_control': {'name': 'the control', 'default': 'returned when it was never set'},
    'controls': {'prefix': "the family's prefix ('' for all)"},
}

def docment(cid: str, fn_name: str, notes: dict) -> None:
    "Rewrite `fn_name`'s signature in cell `cid` with one parameter per line and its comment (kept as written otherwise)."
    k = idx(cid)
    if k is None: return
    text = src(cells[k])
    fn = next((f for f in ast.parse(text).body if isinstance(f, ast.FunctionDef) and f.name == fn_name), None)
    if fn is None: print(f'warning: no {fn_name} in {cid}'); return
    lines = text.split('\n')
    a, b = fn.lineno - 1, fn.body[0].lineno - 1           # the signature's lines: [a, b)
    if b <= a or '#' in '\n'.join(lines[a:b]): return     # a one-liner, or done already
    seg = lambda n: ast.get_source_segment(text, n)
    args, params = fn.args, []
    pos = args.posonlyargs + args.args
    for arg, d in zip(pos, [None] * (len(pos) - len(args.defaults)) + args.defaults): params.append((arg, d))
    kw = list(zip(args.kwonlyargs, args.kw_defaults))
    if args.vararg or args.kwarg or args.posonlyargs: print(f'warning: {fn_name} has */**/posonly: left'); return
    def fmt(arg, d):
        if arg.annotation is None: return arg.arg + (f'={seg(d)}' if d else '')
        return f'{arg.arg}: {seg(arg.annotation)}' + (f' = {seg(d)}' if d else '')
    method = params[0][0].arg == 'self'
    rest = params[1:] if method else params
    missing = [arg.arg for arg, _ in rest + kw if arg.arg not in notes]
    if missing: print(f'warning: {fn_name}: no note for {missing}'); return
    head = f"def {fn_name}({fmt(*params[0])}," if method else f'def {fn_name}('
    pad = ' ' * (len(f'def {fn_name}('))
    out = [head]
    items = rest + ([(None, None)] if kw else []) + kw
    for arg, d in items:
        if arg is None: out.append(pad + '*,'); continue
        out.append(f'{pad}{fmt(arg, d)},  # {notes[arg.arg]}')
    out.append(pad + ')' + (f' -> {seg(fn.returns)}:' if fn.returns else ':'))
    if len(out) == 2: out = [head[:-1] + out[-1].strip()] if method else out
    if not method: out[0:2] = [out[0] + out[1].lstrip()]      # the first parameter on the def line, its comment kept
    lines[a:b] = out
    setsrc(cells[k], '\n'.join(lines), f'docments {fn_name}')

WRITE_PATH = {'aee7937f', '158a726a', 'cae96ced', '308ec72f', '17e86fc2', '1afd1351', 'cfe00414', '62697190', '5b991d1c',
              '1b73fc2f', '8095b6e6', 'c7863446', '99d2bba1', 'abb9f4e2', '8ff035ef'}
for c in list(cells):
    if c['cell_type'] != 'code' or not src(c).startswith('#| export') or c['id'] in WRITE_PATH: continue
    for f in ast.parse(src(c)).body:
        if isinstance(f, ast.FunctionDef) and f.name in DOCS: docment(c['id'], f.name, DOCS[f.name])

# ---------------------------------------------------------------------------------------------------- 9. lines of at most 120
import io, tokenize

def wrap_line_once(text: str, limit: int = 120) -> str:
    """Break each code line over `limit` once, after the last comma that fits in the shallowest parenthesis on that
    line, the rest aligned under the parenthesis; only where both parts then fit and the AST stays the same."""
    lines = text.split('\n')
    try: toks = list(tokenize.generate_tokens(io.StringIO(text).readline))
    except (tokenize.TokenError, SyntaxError): return text
    closes, st = {}, []                       # where each bracket closes: (line, column) -> line
    for t in toks:
        if t.type == tokenize.OP and t.string in '([{': st.append(t.start)
        elif t.type == tokenize.OP and t.string in ')]}' and st: closes[st.pop()] = t.start
    def tail_only_closes(end):                # after the bracket closes, only closers and commas on its line
        return all(t.type in (tokenize.NEWLINE, tokenize.NL, tokenize.COMMENT) or t.string in ')]},:'
                   for t in toks if t.start[0] == end[0] and t.start[1] > end[1])
    stack, cands, prev = [], {}, None
    def opens_left(r, c):      # brackets opened after column c of line r and still open at its end
        d = 0
        for t in toks:
            if t.start[0] == r and t.start[1] > c and t.type == tokenize.OP:
                d = d + 1 if t.string in '([{' else max(d - 1, 0) if t.string in ')]}' else d
        return d
    for t in toks:
        if t.type == tokenize.OP:
            (r, c) = t.start
            if t.string in '([{': stack.append((r, c, t.string == '(' and prev is not None and prev.type == tokenize.NAME))
            elif t.string in ')]}' and stack: stack.pop()
            elif t.string == ',' and stack and stack[-1][2] and len(lines[r - 1]) > limit and c + 1 <= limit:
                ln = lines[r - 1]      # a call's argument list: under its parenthesis, or at the line's indentation
                ind = stack[-1][1] + 1 if stack[-1][0] == r else len(ln) - len(ln.lstrip())
                end = closes.get(stack[-1][:2], (0, 0))
                if stack[-1][0] == r and (end[0] != r or not tail_only_closes(end)): continue   # reads badly split
                rest = ln[c + 1:].strip()
                if len(rest) >= 20 and not rest.startswith('#') and ind + len(rest) <= limit and not opens_left(r, c):
                    cands.setdefault(r, []).append((-len(stack), c + 1, ind))
        if t.type not in (tokenize.NL, tokenize.COMMENT): prev = t
    for r in sorted(cands, reverse=True):
        _, col, ind = max(cands[r])
        ln = lines[r - 1]
        lines[r - 1:r] = [ln[:col].rstrip(), ' ' * ind + ln[col:].strip()]
    new = '\n'.join(lines)
    body = lambda x: '\n'.join(ln for ln in x.split('\n') if not ln.startswith('#|'))
    try: same = ast.dump(ast.parse(body(new))) == ast.dump(ast.parse(body(text)))
    except SyntaxError: same = False
    return new if same else text

for c in cells:        # the parts' methods (not the migrations, which are history, nor the journal's write path)
    if c['cell_type'] != 'code' or c['id'] in WRITE_PATH or not src(c).startswith('#| export\n@patch'): continue
    s = src(c)
    if any(len(ln) > 120 for ln in s.split('\n')): setsrc(c, wrap_line_once(s), f'wrap {c["id"]}')

for cid, text in (('ea44bccd', LAZY_T), ('ea76313a', PARTS_EX), ('64029009', SUMMARY)):
    k = idx(cid)
    if k is not None: setsrc(cells[k], text, f'template {cid}')

# ---------------------------------------------------------------------------------------------------- 6. the parts stay apart
defs = {}
for c in cells:
    if c['cell_type'] != 'code' or not src(c).startswith('#| export'): continue
    tree = ast.parse('\n'.join(ln for ln in src(c).split('\n') if not ln.startswith('#|')))
    for f in tree.body:
        if isinstance(f, ast.FunctionDef) and f.args.args and isinstance(f.args.args[0].annotation, ast.Name):
            used = {n.attr for n in ast.walk(f) if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and n.value.id == 'self'}
            defs[f.name] = (f.args.args[0].annotation.id, used)
bad = []
for name, (part, used) in defs.items():
    if part not in ('MarketData', 'Journal', 'Account', 'OpsRecords'): continue
    for u in used:
        if u in SHARED or u == 'db': continue
        if defs.get(u, (None,))[0] != part: bad.append(f'{part}.{name} uses self.{u}')
if changed:
    NB.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + '\n', encoding='utf-8')
print(f'{NB}: {len(changed)} changes' if changed else f'{NB}: already split')
if bad:     # written all the same (`Store` works either way); a part used alone would miss these
    print('parts reaching outside themselves (move the method, or give the part its own way):', *bad, sep='\n  ')
    sys.exit(1)
