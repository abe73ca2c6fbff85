"""The store split by concern and its lazily built schema: importing builds nothing; the parts work alone over one
database (its engines, clock and unit); `Store` still offers every method it had, as the same functions."""
import subprocess
import sys
from datetime import datetime, timezone

import pytest

from trading_workbench.core.clock import FixedClock
from trading_workbench.core.types import Order, Position
from trading_workbench.store import db as sdb
from trading_workbench.store.db import Account, Database, Journal, MarketData, OpsRecords, Store, StorePart

T0 = datetime(2018, 2, 7, 21, tzinfo=timezone.utc)

# the public methods `Store` had before the split (the API every caller uses)
BEFORE_SPLIT = """acknowledge_alert add_alert after_commit alerts close controls counting equity features
fills finish_run from_settings get_control heartbeat heartbeats journal_order journal_orders
journal_submission journaled_ids lend_unit on_rollback order order_events order_view orders positions
price_range price_sources prices reading record_equity record_fill record_order_outcome risk_action
risk_actions runs save_forecast save_risk_action save_signal_batch save_signals save_validation set_control
set_positions set_trading_state signals start_run tickers trading_state trading_states transaction unit
update_order update_risk_action upsert_features upsert_prices validations""".split()

def run_py(code: str) -> str:
    r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()

def test_import_builds_no_schema():
    out = run_py("import sqlalchemy as sa\n"
                 "made = []\n"
                 "real = sa.create_engine\n"
                 "sa.create_engine = lambda *a, **k: made.append(a[0]) or real(*a, **k)\n"
                 "import trading_workbench.store.db as d\n"
                 "import trading_workbench.execution.paper, trading_workbench.monitoring.alerts\n"
                 "import trading_workbench.recovery.runs\n"
                 "print(d.T.built, made)\n"
                 "d.T['orders']\n"
                 "print(d.T.built, made)")
    assert out.splitlines() == ['False []', "True ['sqlite://']"]      # built on first use, once, in memory

def test_meta_and_threads_build_once():
    out = run_py("import threading\n"
                 "import trading_workbench.store.db as d\n"
                 "got = []\n"
                 "ts = [threading.Thread(target=lambda: got.append(d.T['fills'])) for _ in range(8)]\n"
                 "[t.start() for t in ts]; [t.join() for t in ts]\n"
                 "from trading_workbench.store.db import META\n"
                 "print(len({id(t) for t in got}), META is d.T.metadata, META.tables['fills'] is got[0])")
    assert out == '1 True True'

def test_schema_mapping_behaves_like_the_tables():
    T = sdb.T
    assert T['orders'] is sdb.T.metadata.tables['orders']
    n = len(T.metadata.tables)
    # each way of reading the mapping builds it when it is the first thing a fresh process does
    for expr, want in (("sorted(d.T) == sorted(d.T.metadata.tables)", True), ("len(d.T)", n), ("'fills' in d.T", True),
                       ("d.T.get('fills') is d.T.metadata.tables['fills']", True), ("len(dict(d.T.items()))", n),
                       ("len(list(d.T.keys())) == len(list(d.T.values()))", True)):
        out = run_py(f"import trading_workbench.store.db as d\nprint(d.T.built, {expr}, d.T.built)")
        assert out == f'False {want} True', expr
    assert 'nope' not in T and T.get('nope') is None
    with pytest.raises(KeyError): T['nope']
    with pytest.raises(AttributeError): sdb.NOT_A_NAME

def test_store_keeps_every_method():
    for name in BEFORE_SPLIT: assert callable(getattr(Store, name)), name
    owners = {p: {n for n, v in vars(p).items() if callable(v) and not n.startswith('_')}
              for p in (MarketData, Journal, Account, OpsRecords)}
    for p, names in owners.items():
        assert names, p
        for n in names: assert getattr(Store, n) is getattr(p, n)          # the same function, no wrapper
    every = set().union(*owners.values())
    assert len(every) == sum(map(len, owners.values()))                    # no method in two parts
    assert issubclass(Store, Database) and all(issubclass(Store, p) for p in owners)

def test_parts_share_one_database_and_unit(tmp_path):
    db = Database(f'sqlite:///{tmp_path}/parts.db', clock=FixedClock(T0))
    market, journal, account, ops = MarketData(db), Journal(db), Account(db), OpsRecords(db)
    for p in (market, journal, account, ops): assert p.engine is db.engine and p.reader is db.reader and p._now() == T0
    assert repr(journal).startswith("Journal(Database('sqlite:///")
    def both(fail):
        with db.unit():
            journal.journal_submission(Order('p-1', 'KO', 'BUY', 10, limit_price=45.0))
            ops.add_alert('info', 'test', 'same unit')
            if fail: raise RuntimeError('boom')
    with pytest.raises(RuntimeError): both(True)
    assert journal.order('p-1') is None and ops.alerts().empty              # rolled back together
    both(False)
    account.set_positions('PAPER', [Position('KO', 10, 45.0)], T0)
    db.close()
    st = Store(f'sqlite:///{tmp_path}/parts.db')                            # a Store over the same file sees it all
    assert st.order('p-1')['state'] == 'new' and st.alerts().message.tolist() == ['same unit']
    assert st.positions('PAPER') == [Position('KO', 10, 45.0)]
    st.close()

def test_a_part_alone_has_only_its_methods():
    db = Database('sqlite://')
    market = MarketData(db)
    assert market.tickers() == [] and not hasattr(market, 'journal_submission') and not hasattr(market, 'heartbeat')
    with pytest.raises(AttributeError): Journal(db).prices
    db.close()

def test_each_part_uses_only_itself_and_the_database():
    import ast, inspect, textwrap
    shared = {n for n, v in vars(StorePart).items() if type(v).__name__ == '_Shared'} | {'db'}
    assert {'engine', 'reader', 'transaction', 'reading', '_now'} <= shared
    for part in (MarketData, Journal, Account, OpsRecords):
        own = set(vars(part))
        for name, fn in vars(part).items():
            if not callable(fn) or name.startswith('__'): continue
            tree = ast.parse(textwrap.dedent(inspect.getsource(inspect.unwrap(fn))))
            used = {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name)
                    and n.value.id == 'self'}
            assert used <= own | shared, f'{part.__name__}.{name} uses {sorted(used - own - shared)}'
