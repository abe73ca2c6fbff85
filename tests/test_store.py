"""The store, on SQLite and on a real PostgreSQL server: round trips, idempotent upserts, all-or-nothing
batches, migrations from empty and from the previous schema, and concurrent writers."""
import multiprocessing as mp
import time
from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from trading_workbench.core.types import (Fill, Forecast, Order, OrderState, Position, Provenance, Signal)
from trading_workbench.store.db import (HEAD, META, MIGRATIONS, BadRowError, Store, StoreError, make_engine, migrate)
from trading_workbench.data.sources import BundledSource

read_bundled = BundledSource().history

T0 = datetime(2018, 2, 7, 21, tzinfo=timezone.utc)

@pytest.fixture
def store(db_url):
    s = Store(db_url); yield s; s.close()

def test_prices_round_trip_and_idempotent(store):
    aapl = read_bundled('AAPL')
    assert store.upsert_prices('AAPL', aapl, 'bundled') == len(aapl) == 1259
    assert store.upsert_prices('AAPL', aapl, 'bundled') == 0
    pd.testing.assert_frame_equal(store.prices('AAPL'), aapl)
    changed = aapl.copy(); changed.loc['2018-02-07', 'close'] += 0.01
    assert store.upsert_prices('AAPL', changed, 'csv') == 1
    assert store.prices('AAPL', '2018-02-07').close.iloc[0] == pytest.approx(aapl.close.iloc[-1] + 0.01)
    src = store.price_sources('AAPL')
    assert dict(zip(src.source, src.bars)) == {'bundled': 1258, 'csv': 1}
    assert store.tickers() == ['AAPL']

@pytest.mark.parametrize('col,value,reason',
                         [('close', np.nan, 'close = nan is not finite'), ('open', np.inf, 'open = inf is not finite'),
                                              ('low', 0.0, 'low = 0.0 must be > 0'),
                                              ('volume', -5.0, 'volume = -5.0 must be >= 0')])
def test_bad_bar_writes_nothing(store, col, value, reason):
    msft = read_bundled('MSFT')
    store.upsert_prices('MSFT', msft.iloc[:100], 'bundled')
    bad = msft.copy(); bad.loc['2017-03-01', col] = value
    with pytest.raises(BadRowError) as e: store.upsert_prices('MSFT', bad, 'bundled')
    assert e.value.row_index == bad.index.get_loc(pd.Timestamp('2017-03-01')) and reason in str(e.value)
    assert 'MSFT 2017-03-01' in str(e.value)
    assert store.price_range('MSFT')[2] == 100   # the earlier rows are untouched, nothing of the bad batch landed

def test_duplicate_bars_refused(store):
    ko = read_bundled('KO').iloc[:10]
    dup = pd.concat([ko, ko.iloc[[3]]])
    with pytest.raises(BadRowError, match='duplicate date'): store.upsert_prices('KO', dup, 'bundled')
    assert store.price_range('KO') is None

def test_features_versions_and_nan(store):
    aapl = read_bundled('AAPL')
    f = pd.DataFrame({'ret_1': aapl.close.pct_change(), 'vol_20': aapl.close.pct_change().rolling(20).std()})
    assert store.upsert_features('AAPL', f, 'v1') == 1259
    store.upsert_features('AAPL', f * 2, 'v2')
    pd.testing.assert_frame_equal(store.features('AAPL', 'v1'), f, check_freq=False)
    pd.testing.assert_frame_equal(store.features('AAPL', 'v2', start='2018-01-01'), (f * 2).loc['2018-01-01':],
                                  check_freq=False)
    bad = f.copy(); bad.iloc[500, 1] = np.inf
    with pytest.raises(BadRowError, match='vol_20 is infinite'): store.upsert_features('AAPL', bad, 'v3')
    assert store.features('AAPL', 'v3').empty

def make_signal(ticker='AAPL', conf=0.6):
    return Signal(ticker, 'BUY', conf, 0.3, 0.01, 5, 159.54, T0, Provenance('samossa', '1', {'rank': 3}, data_end=T0))

def test_signals_all_or_nothing(store):
    ids = store.save_signals('r1', [make_signal('AAPL'), make_signal('MSFT')])
    assert len(ids) == 2
    with pytest.raises(BadRowError, match='signals row 1'): store.save_signals('r2',
                                                                               [make_signal('KO'), {'ticker': 'KO'}])
    assert store.signals('r2').empty and len(store.signals()) == 2
    assert store.signals('r1').provenance.iloc[0]['parameters'] == {'rank': 3}
    fid = store.save_forecast('r1', 'AAPL', T0,
                              Forecast('samossa', [1.0, 2.0], [0.5, 1.0], [1.5, 3.0], diagnostics={'rank': 3}))
    assert fid >= 1

def test_journal_fills_positions_equity(store):
    o = Order('r1-AAPL-BUY-1', 'AAPL', 'BUY', 10, limit_price=160.0, run_id='r1')
    assert store.journal_order(o) and not store.journal_order(o)
    store.update_order(o.client_order_id, OrderState.PARTIALLY_FILLED, broker_order_id='42', filled_quantity=4,
                       avg_fill_price=159.9)
    f1 = Fill('e1', o.client_order_id, 'AAPL', 'BUY', 4, 159.9, T0, 1.0, '42')
    f2 = Fill('e2', o.client_order_id, 'AAPL', 'BUY', 6, 160.0, T0 + timedelta(seconds=1), 1.0, '42')
    assert store.record_fill(f1) and store.record_fill(f2) and not store.record_fill(f1)
    store.update_order(o.client_order_id, OrderState.FILLED, filled_quantity=10, avg_fill_price=159.96)
    row = store.order(o.client_order_id)
    assert (row['state'], row['filled_quantity'], row['broker_order_id'], row['adopted']) == ('filled', 10, '42', False)
    assert [r['client_order_id'] for r in store.orders(states=[OrderState.FILLED])] == [o.client_order_id]
    assert store.fills(o.client_order_id) == [f1, f2]
    with pytest.raises(StoreError, match='not in the journal'): store.update_order('ghost', OrderState.FILLED)
    with pytest.raises(BadRowError, match='filled_quantity must be >= 0'): store.update_order(o.client_order_id,
                                                                                              OrderState.FILLED,
                                                                                              filled_quantity=-1)
    store.set_positions('PAPER', [Position('AAPL', 10, 159.96), Position('KO', 0, 40.0)], T0)
    assert store.positions('PAPER') == [Position('AAPL', 10, 159.96)]
    with pytest.raises(BadRowError, match='duplicate ticker'): store.set_positions('PAPER',
                                                                                   [Position('KO', 1, 1.0),
                                                                                    Position('KO', 2, 1.0)], T0)
    assert store.positions('PAPER') == [Position('AAPL', 10, 159.96)]
    store.record_equity('PAPER', T0, 998_400.0, 1_000_000.0)
    with pytest.raises(BadRowError, match='equity = nan'): store.record_equity('PAPER', T0, 1.0, float('nan'))
    assert store.equity('PAPER').equity.tolist() == [1_000_000.0]

def test_runs_alerts_heartbeats_controls_validation(store):
    store.start_run('r1', 'daily', {'date': '2018-02-07'})
    store.finish_run('r1', 'partial', {'failed_models': ['llm']})
    assert store.runs('daily').report.iloc[0] == {'failed_models': ['llm']}
    with pytest.raises(StoreError, match='never started'): store.finish_run('r9', 'ok')
    aid = store.add_alert('critical', 'risk', 'drawdown limit hit')
    assert store.alerts(active_only=True).id.tolist() == [aid]
    store.acknowledge_alert(aid); assert store.alerts(active_only=True).empty
    store.heartbeat('broker', 'ok'); store.heartbeat('broker', 'degraded', 'reconnecting')
    assert store.heartbeats().status.tolist() == ['degraded']
    store.set_control('halt', {'reason': 'operator', 'active': True}, by='ops')
    store.set_control('flag.enable_llm', False)
    assert store.controls('flag.') == {'flag.enable_llm': False} and store.get_control('halt')['active'] is True
    store.save_validation('v1', 'samossa', 'AAPL', {'rmse': 1.2, 'hit_rate': 0.53, 'bad': float('nan')})
    assert store.validations('v1').metrics.iloc[0] == {'rmse': 1.2, 'hit_rate': 0.53, 'bad': None}

def test_migrate_from_empty(db_url):
    eng = make_engine(db_url)
    assert migrate(eng) == HEAD
    assert migrate(eng) == HEAD   # idempotent
    insp = sa.inspect(eng)
    for name, table in META.tables.items():   # the declared head schema is what the migrations built
        assert {c['name'] for c in insp.get_columns(name)} == set(table.columns.keys()), name
    eng.dispose()

def test_migrate_from_previous_schema(db_url):
    "A database created by the first release (0001) with data in it upgrades in place."
    eng = make_engine(db_url)
    assert migrate(eng, '0001') == '0001'
    with eng.begin() as c:
        assert not sa.inspect(c).has_table('controls')
        c.execute(sa.text("INSERT INTO orders (client_order_id, run_id, ticker, side, quantity, order_type, "
                          "limit_price, tif, state,"
                          " filled_quantity, created_at, updated_at) VALUES ('old-1', 'r0', 'AAPL', 'BUY', 5, 'LMT', "
                          "100.0, 'DAY',"
                          " 'filled', 5, :t, :t)"), dict(t=datetime(2018, 1, 2)))
    eng.dispose()
    st = Store(db_url)
    assert st.revision == HEAD == MIGRATIONS[-1].revision
    old = st.order('old-1')
    assert old['adopted'] is False and old['filled_quantity'] == 5
    st.set_control('halt', True); assert st.get_control('halt') is True
    st.close()

def test_newer_schema_refused(db_url):
    eng = make_engine(db_url); migrate(eng)
    with eng.begin() as c: c.execute(sa.text("INSERT INTO schema_version (revision, description, applied_at) VALUES "
                                             "('9999', 'future', :t)"),
                                     dict(t=datetime(2030, 1, 1)))
    with pytest.raises(StoreError, match='newer than this code knows'): migrate(eng)
    eng.dispose()

# --- concurrency: two writer processes and one reader for a few seconds, no lock errors -------------------

def _writer(url, name, seconds, q):
    try:
        st = Store(url)
        n, end = 0, time.monotonic() + seconds
        while time.monotonic() < end:
            o = Order(f'{name}-{n}', 'AAPL', 'BUY', 1 + n % 7, limit_price=100.0, run_id=name)
            st.journal_order(o)
            st.update_order(o.client_order_id, OrderState.SUBMITTED)
            st.record_fill(Fill(f'{name}-x{n}', o.client_order_id, 'AAPL', 'BUY', o.quantity, 100.0, T0))
            st.heartbeat(name)
            n += 1
        st.close(); q.put((name, n, None))
    except Exception as e:  # noqa: BLE001 -- reported to the parent, which fails the test with it
        q.put((name, -1, repr(e)))

def _reader(url, seconds, q):
    try:
        st = Store(url)
        reads, end, last = 0, time.monotonic() + seconds, 0
        while time.monotonic() < end:
            n = len(st.orders())
            assert n >= last, 'the journal shrank'
            last = n; st.fills(); reads += 1
        st.close(); q.put(('reader', reads, None))
    except Exception as e:  # noqa: BLE001 -- reported to the parent
        q.put(('reader', -1, repr(e)))

def test_two_writers_one_reader(db_url):
    Store(db_url).close()   # migrate once up front, like a deployment does
    ctx = mp.get_context('spawn')
    q = ctx.Queue()
    procs = [ctx.Process(target=_writer, args=(db_url, f'w{i}', 3.0, q))
             for i in range(2)] + [ctx.Process(target=_reader, args=(db_url, 3.0, q))]
    for p in procs: p.start()
    results = {}
    for _ in procs:
        name, n, err = q.get(timeout=120)
        results[name] = (n, err)
    for p in procs: p.join(30)
    errors = {k: v[1] for k, v in results.items() if v[1]}
    assert not errors, errors
    st = Store(db_url)
    for w in ('w0', 'w1'):
        n = results[w][0]
        assert n > 10, results
        assert len(st.orders(run_id=w)) == n and all(r['state'] == 'submitted' for r in st.orders(run_id=w))
    assert len(st.fills()) == results['w0'][0] + results['w1'][0]
    assert results['reader'][0] > 10
    st.close()

def test_journal_order_keeps_stop_price_and_reduce_only(store):
    """A stop order journaled one at a time resumes exactly as decided: its trigger and
    reduce-only flag survive the journal."""
    from trading_workbench.execution.orders import order_from_journal
    o = Order('risk-a1-XOM', 'XOM', 'SELL', 40, 'STP', None, 'GTC', 'risk-a1', 'tighten', stop_price=81.5,
              reduce_only=True)
    assert store.journal_order(o)
    back = order_from_journal(store.order(o.client_order_id))
    assert (back.stop_price, back.reduce_only, back.order_type.value) == (81.5, True, 'STP')
    assert back == o
