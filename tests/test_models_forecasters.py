"""The four forecasters and the ensemble on real bundled prices: shapes and types, the whole universe,
no look-ahead, `update()` == fixed-parameter refit, degenerate input, pickling, seeded determinism."""
from __future__ import annotations
import pickle
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from trading_workbench.core.types import Forecast, utc
from trading_workbench.models.base import (
    Forecaster,
    ModelInputError,
    ModelNotFittedError,
    bundled_closes,
    provenance_of,
    walk_forward,
)
from trading_workbench.models.ensemble import Ensemble
from trading_workbench.models.garch import GARCHForecaster
from trading_workbench.models.mssa_rl import MSSARL
from trading_workbench.models.samossa import SAMoSSA
from trading_workbench.models.sarimax import SARIMAXForecaster

FIXTURES = Path(__file__).resolve().parent / 'fixtures' / 'prices'
PRICES = Path(__file__).resolve().parents[1] / 'trading_workbench' / 'data' / 'prices'
UNIVERSE = sorted(p.stem for p in PRICES.glob('*.csv'))
FACTORIES = {'samossa': SAMoSSA, 'sarimax': SARIMAXForecaster, 'garch': lambda: GARCHForecaster(refit_every=None),
             'mssa_rl': MSSARL}


@pytest.fixture(scope='module')
def aapl() -> pd.Series:
    return bundled_closes('AAPL')['AAPL']


def test_bundled_universe_is_there():
    assert len(UNIVERSE) >= 50


@pytest.mark.parametrize('name', list(FACTORIES))
def test_fits_and_forecasts_the_bundled_universe(name):
    "Every model fits 1000 bars of every bundled ticker and returns a valid price Forecast."
    for t in UNIVERSE:
        y = bundled_closes(t)[t].iloc[-1000:]
        m = FACTORIES[name]().fit(y)
        f = m.forecast(5)
        assert isinstance(f, Forecast) and f.model == name and f.horizon == 5 and f.target == 'close', t
        last = float(y.iloc[-1])
        assert all(lo <= mu <= hi for lo, mu, hi in zip(f.lower, f.mean, f.upper)), t
        assert 0.7 * last < f.mean[-1] < 1.3 * last, (t, f.mean, last)
        assert f.upper[-1] - f.lower[-1] >= f.upper[0] - f.lower[0] - 1e-9, t
        prov = provenance_of(m)
        assert prov.model == name and prov.data_end == utc(y.index[-1]) and prov.fit_seconds > 0


@pytest.mark.parametrize('name', list(FACTORIES))
def test_protocol_params_and_pickle(name, aapl):
    m = FACTORIES[name]()
    assert isinstance(m, Forecaster) and m.name == name and m.version
    with pytest.raises(ModelNotFittedError): m.forecast(1)
    m.fit(aapl.iloc[-1000:])
    p = m.params()
    assert isinstance(p, dict) and p
    import json; json.dumps(p)                      # provenance must be JSON-ready
    m2 = pickle.loads(pickle.dumps(m))
    np.testing.assert_array_equal(m.forecast(3).mean, m2.forecast(3).mean)


@pytest.mark.parametrize('name', list(FACTORIES))
@pytest.mark.parametrize('ticker', ['AAPL', 'XOM', 'JPM'])
def test_update_equals_fixed_parameter_refit(name, ticker):
    "fit(a).update(b) forecasts exactly what fit(a).filter(a + b) forecasts (parameters fixed, no estimation)."
    y = bundled_closes(ticker)[ticker].iloc[-1100:]
    a, ab = y.iloc[:1000], y
    base = FACTORIES[name]().fit(a)
    upd = pickle.loads(pickle.dumps(base))
    for i in range(1000, 1100, 25): upd.update(y.iloc[i:i + 25])     # several updates, several bars each
    ref = pickle.loads(pickle.dumps(base)).filter(ab)
    fu, fr = upd.forecast(5), ref.forecast(5)
    np.testing.assert_allclose(fu.mean, fr.mean, rtol=1e-9)
    np.testing.assert_allclose(fu.lower, fr.lower, rtol=1e-9)
    np.testing.assert_allclose(fu.upper, fr.upper, rtol=1e-9)
    assert upd.fit_info.data_end == y.index[-1].to_pydatetime()
    # and update really moved the state: the forecast differs from the one before the new bars
    assert not np.allclose(fu.mean, base.forecast(5).mean)


@pytest.mark.parametrize('name', list(FACTORIES) + ['ensemble'])
def test_no_look_ahead(name, aapl):
    "A walk-forward forecast for bar t is the same whatever happens after t-1: perturb the future, compare the past."
    y = aapl.iloc[-1080:]
    y2 = y.copy()
    y2.iloc[-40:] = y2.iloc[-40:] * np.linspace(1.3, 0.6, 40)               # a wild future
    make = (lambda: Ensemble({k: f() for k, f in FACTORIES.items()},
                             window=20)) if name == 'ensemble' else FACTORIES[name]
    w1, w2 = walk_forward(make(), y, n_test=80), walk_forward(make(), y2, n_test=80)
    # rows 0..40 forecast bars up to the first perturbed one from unperturbed data only
    pd.testing.assert_frame_equal(w1.iloc[:41][['mean', 'lower', 'upper']], w2.iloc[:41][['mean', 'lower', 'upper']])
    assert not np.allclose(w1['mean'].iloc[42:], w2['mean'].iloc[42:])       # the test can fail: later rows do change


@pytest.mark.parametrize('name', list(FACTORIES))
def test_fit_does_not_read_beyond_its_input(name, aapl):
    "Fitting on y[:t] gives the same model whether or not later bars exist in the caller's series."
    full = aapl.iloc[-1200:]
    cut = full.iloc[:1000].copy()
    f1 = FACTORIES[name]().fit(full.iloc[:1000]).forecast(3)
    f2 = FACTORIES[name]().fit(cut).forecast(3)
    np.testing.assert_array_equal(f1.mean, f2.mean)


def _dhr_open_with_nan() -> pd.Series:
    "A real series with a real NaN (DHR open, 2015-07-17, see tests/fixtures/prices/SOURCES.md)."
    df = pd.read_csv(FIXTURES / 'sp500_5y_DHR.csv')
    date_col = next(c for c in df.columns if c.lower() == 'date')
    open_col = next(c for c in df.columns if c.lower() == 'open')
    return pd.Series(df[open_col].to_numpy(float), index=pd.DatetimeIndex(pd.to_datetime(df[date_col]), name='date'))


@pytest.mark.parametrize('name', list(FACTORIES))
def test_degenerate_input_is_a_clear_error(name, aapl):
    make = FACTORIES[name]
    with pytest.raises(ModelInputError, match='constant series'): make().fit(pd.Series(np.full(1000, 42.0)))
    with pytest.raises(ModelInputError, match='too short'): make().fit(aapl.iloc[:25])
    dhr = _dhr_open_with_nan()
    assert dhr.isna().any()
    with pytest.raises(ModelInputError,
                       match=r'NaN/inf value\(s\), first at position \d+ \(2015-07-17'): make().fit(dhr)
    with pytest.raises(ModelInputError, match='prices must be > 0'): make().fit(aapl.iloc[-1000:] - 200)
    m = make().fit(aapl.iloc[-1000:])
    with pytest.raises(ModelInputError, match='NaN'): m.update([float('nan')])
    with pytest.raises(ModelInputError, match='horizon'): m.forecast(0)


def _q_table(seed: int) -> bytes:
    closes = bundled_closes('AAPL', 'MSFT', 'GOOGL')
    return MSSARL(seed=seed).fit(closes['AAPL'].iloc[-1000:], closes[['MSFT', 'GOOGL']].iloc[-1000:]).Q_.tobytes()


def test_mssa_rl_seeded_determinism_across_processes():
    "The same seed gives the same Q table bit for bit, in this process and in worker processes."
    with ProcessPoolExecutor(max_workers=2) as ex:
        a, b = ex.map(_q_table, [3, 3])
    assert a == b == _q_table(3)
    assert _q_table(4) != a


def test_ensemble_weights_follow_accuracy(aapl):
    "A member that forecasts badly (a constant far-off price) gets a tiny weight; a failing member is left out."
    class Stale:
        name, version = 'stale', '0'
        def fit(self, y, X=None): self.p = float(y.iloc[0]); return self
        def forecast(self, horizon, X=None): return Forecast('stale', (self.p,) * horizon, (self.p * 0.9,) * horizon,
                                                             (self.p * 1.1,) * horizon)
        def update(self, y_new, X_new=None): return self
        def filter(self, y, X=None): return self
        def params(self): return {}
    class Broken(Stale):
        def forecast(self, horizon, X=None): raise ValueError('no forecast today')
    ens = Ensemble({'samossa': SAMoSSA(), 'stale': Stale(), 'broken': Broken()}, window=40).fit(aapl.iloc[-1040:])
    w = ens.weights()
    assert set(w) == {'samossa', 'stale'} and w['samossa'] > 0.95
    f = ens.forecast(2)
    assert 'broken' in f.diagnostics['failed'] and f.diagnostics['members'] == ['samossa', 'stale']
