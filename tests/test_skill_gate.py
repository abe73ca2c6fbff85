"""validation.gate end to end: a real walk-forward into a real store, then the gate the daily run applies.
A forecaster that returns noise is capped; one that learns a planted signal passes."""
from __future__ import annotations
from datetime import datetime, timedelta, timezone
import numpy as np
import pandas as pd
import pytest
from trading_workbench.core.types import Forecast, Provenance, Signal
from trading_workbench.models.base import FitInfo, check_new, check_series
from trading_workbench.store.db import Store
from trading_workbench.validation.gate import GateRule, latest_gate, read_gate, save_gate
from trading_workbench.validation.skill import validate
from trading_workbench.validation.walk_forward import ModelSpec, WalkForwardPlan

TICKERS = ['AAA', 'BBB', 'CCC']


def planted_prices(seed: int = 0, n: int = 900, phi: float = 0.8) -> pd.DataFrame:
    "Prices whose daily log returns are AR(1) with coefficient `phi`: tomorrow's move is partly known today."
    rng = np.random.default_rng(seed)
    out = {}
    for t in TICKERS:
        r = np.zeros(n)
        e = rng.normal(0, 0.01, n)
        for i in range(1, n): r[i] = phi * r[i - 1] + e[i]
        out[t] = 50 * np.exp(np.cumsum(r))
    return pd.DataFrame(out, index=pd.bdate_range('2015-01-01', periods=n))


class _Base:
    "Shared state keeping for the two test forecasters (real fit/update/forecast, no shortcuts)."
    version = '1'
    def params(self): return {}
    def fit(self, y, X=None):
        y = check_series(y, min_length=30, positive=True)
        self.logp = list(np.log(y.to_numpy()))
        r = np.diff(self.logp)
        self.phi = float(r[1:] @ r[:-1] / (r[:-1] @ r[:-1]))
        self.sd = float(r.std())
        self.fit_info = FitInfo(y, 0.0)
        return self
    def update(self, y_new, X_new=None):
        self.logp += list(np.log(check_new(y_new, positive=True).to_numpy())); return self
    def _forecast(self, moves):
        m = np.exp(self.logp[-1] + np.asarray(moves))
        sd = self.sd * np.sqrt(np.arange(1, len(m) + 1))
        return Forecast(self.name, mean=tuple(m), lower=tuple(m * np.exp(-2 * sd)), upper=tuple(m * np.exp(2 * sd)))


class AR1(_Base):
    "Learns the AR(1) of returns: the planted signal."
    name = 'ar1'
    def forecast(self, horizon, X=None):
        r = self.logp[-1] - self.logp[-2]
        return self._forecast(np.cumsum([r * self.phi ** k for k in range(1, horizon + 1)]))


class Noise(_Base):
    "Forecasts a random move of one daily s.d.: no skill at all."
    name = 'noise'
    def forecast(self, horizon, X=None):
        rng = np.random.default_rng(len(self.logp))
        return self._forecast(np.cumsum(rng.normal(0, self.sd, horizon)))


@pytest.fixture(scope='module')
def validated(tmp_path_factory):
    store = Store(f"sqlite:///{tmp_path_factory.mktemp('gate') / 'store.db'}")
    plan = WalkForwardPlan(horizons=(1, 5), n_origins=600, refit_every=200)
    validate(planted_prices(), [ModelSpec(AR1), ModelSpec(Noise)], plan, 'wf-gate-test', store=store, reps=200,
             progress=False)
    return store


def signal(model: str, ticker: str) -> Signal:
    return Signal(ticker, 'BUY', 0.8, 0.2, 0.01, 1, 50.0, datetime(2026, 1, 2, tzinfo=timezone.utc),
                  Provenance(model, '1'))


@pytest.mark.parametrize('horizon', [1, 5])
def test_gate_caps_noise_and_passes_a_learnt_signal(validated, horizon):
    now = datetime.now(timezone.utc)
    rep = read_gate(validated, ['ar1', 'noise'], TICKERS, horizon, now, GateRule(mode='cap', min_ticker_n=250))
    f = rep.frame().set_index(['model', 'ticker'])
    assert set(f.loc['ar1', 'status']) == {'proven'}, f.loc['ar1', 'reason'].tolist()
    assert set(f.loc['noise', 'status']) == {'unproven'} and set(f.loc['noise', 'action']) == {'cap'}
    assert (f.loc['ar1', 'rmse_ratio'] < 1).all() and (f.loc['noise', 'rmse_ratio'] > 1).all()
    assert set(f.loc['ar1', 'scope']) == {'ticker'}      # 600 forecasts per ticker: each ticker judged on its own
    gated = {s.model: s for s in rep.apply([signal('ar1', 'AAA'), signal('noise', 'AAA')])}
    assert (gated['ar1'].action.value, gated['ar1'].confidence) == ('BUY', 0.8)
    assert (gated['noise'].action.value, gated['noise'].confidence) == ('HOLD', 0.5)
    mark = gated['noise'].provenance.parameters['skill_gate']
    assert (
        mark['status'] == 'unproven'
        and 'not better than the random walk' in mark['reason']
        and mark['validation_run_id'] == 'wf-gate-test'
    )


def test_disable_drops_and_off_only_marks(validated):
    now = datetime.now(timezone.utc)
    dis = read_gate(validated, ['ar1', 'noise'], TICKERS, 1, now, GateRule(mode='disable'))
    assert [s.model for s in dis.apply([signal('ar1', 'BBB'), signal('noise', 'BBB')])] == ['ar1']
    off = read_gate(validated, ['noise'], TICKERS, 1, now, GateRule(mode='off')).apply([signal('noise', 'BBB')])[0]
    assert (off.action.value, off.confidence, off.provenance.parameters['skill_gate']['status']) == ('BUY', 0.8,
                                                                                                     'unproven')


def test_stale_or_missing_validation_applies_the_default_and_is_stored(validated):
    later = datetime.now(timezone.utc) + timedelta(days=120)
    rep = read_gate(validated, ['noise', 'sarimax'], TICKERS, 1, later, GateRule(max_age_days=90, unvalidated='cap'))
    f = rep.frame().set_index(['model', 'ticker'])
    assert set(f.loc['noise', 'status']) == {'stale'} and set(f.loc['sarimax', 'status']) == {'unvalidated'}
    assert set(f['action']) == {'cap'} and 'days old' in f.loc[('noise', 'AAA'), 'reason']
    save_gate(validated, 'daily-test', rep)
    back = latest_gate(validated, 'daily-test')
    assert len(back) == len(rep.verdicts) and set(back.status) == {'stale', 'unvalidated'}


def test_verdicts_round_trip_on_both_databases(db_url):
    "wf_gate on SQLite and PostgreSQL: a re-run replaces its verdicts; the newest run is what status reads."
    from trading_workbench.validation.gate import GateReport, GateVerdict
    store = Store(db_url)
    t0 = datetime(2026, 1, 2, 21, 5, tzinfo=timezone.utc)
    v = GateVerdict('noise', 'AAA', 5, 'unproven', 'cap', 'not better than the random walk (RMSE 1.41)', 'ticker',
                    'wf-1', t0, 5, 600, 1.41, 9.0, 1e-9)
    save_gate(store, 'daily-a', GateReport((v,), GateRule(), t0))
    save_gate(store, 'daily-b',
              GateReport((v, GateVerdict('ar1', 'AAA', 5, 'proven', 'pass', 'better')), GateRule(),
                         t0 + timedelta(days=1)))
    save_gate(store, 'daily-b', GateReport((v,), GateRule(), t0 + timedelta(days=1)))
    back = latest_gate(store)
    assert list(back.run_id) == ['daily-b'] and list(back.model) == ['noise']
    assert back.validated_at.iloc[0] == t0 and back.dm_pvalue.iloc[0] == pytest.approx(1e-9)
