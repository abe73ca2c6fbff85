"""`Store.save_signal_batch` (one multi-row INSERT ... RETURNING) against `save_signals` (one INSERT per row), on
SQLite and on a real PostgreSQL server: the same rows and provenance JSON, ids in input order, all or nothing."""
from datetime import date, datetime, timedelta, timezone

import pandas as pd
import pytest

from trading_workbench.core.types import Provenance, Signal
from trading_workbench.store.db import BadRowError, Store

T0 = datetime(2018, 2, 7, 21, 5, tzinfo=timezone.utc)
COLS = ['ticker', 'model', 'action', 'confidence', 'risk_score', 'expected_return', 'horizon', 'current_price', 'as_of',
        'provenance']


@pytest.fixture
def store(db_url):
    s = Store(db_url); yield s; s.close()


def signals(n: int) -> list[Signal]:
    "`n` signals whose provenance has nested dicts, lists, NaN, a date and datetimes (what the models put there)."
    out = []
    for i in range(n):
        prov = Provenance('garch' if i % 2 else 'samossa', '1.0',
                          {'estimates': {'nu': 4.6 + i, 'omega': float('nan')}, 'ranks': [1, 2, i],
                           'skill_gate': {'status': 'unproven'}},
                          data_start=date(2014, 2, 20), data_end=T0, fitted_at=T0 - timedelta(microseconds=i),
                          fit_seconds=0.01 * i)
        out.append(Signal(f'T{i:03d}', ('BUY', 'SELL', 'HOLD')[i % 3], 0.5 + i / 1000, 0.3, 0.001 * i, 5, 100.0 + i, T0,
                          prov))
    return out


def test_batch_stores_what_save_signals_stores(store):
    sigs = signals(120)
    one = store.save_signals('one', sigs)
    batch = store.save_signal_batch('batch', sigs)
    assert len(batch) == 120 and batch == sorted(batch) and min(batch) > max(one)
    a, b = store.signals('one'), store.signals('batch')
    pd.testing.assert_frame_equal(a[COLS], b[COLS])
    assert list(b.ticker) == [s.ticker for s in sigs]                                   # the ids follow the input order
    # NaN stored as null, as before
    assert b.provenance.iloc[1]['parameters']['estimates'] == {'nu': 5.6, 'omega': None}


def test_batch_is_all_or_nothing(store):
    good = signals(3)
    with pytest.raises(BadRowError, match='signals row 2'):
        store.save_signal_batch('bad', [*good[:2], {'ticker': 'KO'}])
    inf = Signal('KO', 'BUY', 0.6, 0.3, 0.01, 5, 50.0, T0,
                 Provenance('sarimax', '1', {'aic': float('inf')}, data_end=T0))
    with pytest.raises(BadRowError, match='infinite'):
        store.save_signal_batch('bad', [*good, inf])
    assert store.signals('bad').empty
    assert store.save_signal_batch('none', []) == []
