"""validation.stats against reference values: R's forecast::dm.test (fixture), the DSR paper's worked example, CSCV
cases with known answers."""
from __future__ import annotations
import math
from pathlib import Path
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings, strategies as st
from trading_workbench.validation.stats import (StatsInputError, deflated_sharpe, dm_test, model_confidence_set,
                                                paired_t_test, pbo_cscv, probabilistic_sharpe, spa_test)

FX = Path(__file__).parent / 'fixtures'
INPUTS = pd.read_csv(FX / 'dm_test_inputs.csv')
REFERENCE = pd.read_csv(FX / 'dm_test_reference.csv')


@pytest.mark.parametrize('row', REFERENCE.to_dict('records'),
                         ids=lambda r: f"{r['case']}-h{r['h']}-p{r['power']}-{r['alternative']}-{r['varestimator']}")
def test_dm_matches_r(row):
    case = INPUTS[INPUTS.case == row['case']].sort_values('i')
    r = dm_test(case.e1.to_numpy(), case.e2.to_numpy(), h=int(row['h']), power=row['power'],
                alternative=row['alternative'], varestimator=row['varestimator'])
    assert r.statistic == pytest.approx(row['statistic'], rel=1e-9, abs=1e-12)
    assert r.p_value == pytest.approx(row['p_value'], rel=1e-9, abs=1e-12)
    assert r.horizon_used == row['h_used'] and r.fallback == bool(row['warned'])


def test_reference_covers_the_fallback():
    assert REFERENCE.warned.any() and (REFERENCE.h_used < REFERENCE.h).any()


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 4), st.sampled_from(['two.sided', 'less', 'greater']), st.integers(0, 10_000))
def test_dm_is_antisymmetric(h, alt, seed):
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=60), rng.normal(size=60)
    r1, r2 = dm_test(a, b, h=h, varestimator='bartlett'), dm_test(b, a, h=h, varestimator='bartlett')
    assert r1.statistic == pytest.approx(-r2.statistic) and r1.p_value == pytest.approx(r2.p_value)
    flip = {'less': 'greater', 'greater': 'less'}.get(alt, alt)
    assert dm_test(a, b, h=h, alternative=alt, varestimator='bartlett').p_value == pytest.approx(
        dm_test(b, a, h=h, alternative=flip, varestimator='bartlett').p_value)


@pytest.mark.parametrize('bad',
                         [np.array([1.0, np.inf, 2, 3, 4, 5]), np.array([1.0, np.nan, 2, 3, 4, 5]),
                          np.array([1e308, -1e308, 1, 2, 3, 4])])
def test_dm_hostile_inputs(bad):
    ok = np.arange(6.0)
    # 1e308 squares to inf: the differential is not finite, an error rather than a NaN p-value
    if np.isfinite(bad).all():
        with pytest.raises(StatsInputError, match='overflow'): dm_test(bad, ok)
    else:
        with pytest.raises(StatsInputError, match='NaN/inf'): dm_test(bad, ok)


def test_dm_rejects_bad_options():
    a, b = np.arange(10.0), np.arange(10.0)[::-1]
    for kw, msg in [(dict(h=0), 'h:'), (dict(h=True), 'h:'), (dict(alternative='up'), 'alternative'),
                    (dict(varestimator='nw'), 'varestimator'), (dict(power=0), 'power'), (dict(h=5), 'h:')]:
        with pytest.raises(StatsInputError, match=msg): dm_test(a, b, **kw)
    with pytest.raises(StatsInputError, match='as many'): dm_test(a, b[:5])
    with pytest.raises(StatsInputError): dm_test([], [])


def test_paired_t_matches_dm_at_h1():
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=200), rng.normal(scale=1.2, size=200)
    assert paired_t_test(a ** 2, b ** 2).statistic == pytest.approx(dm_test(a, b).statistic, rel=1e-10)


def test_dsr_worked_example():
    # Bailey & Lopez de Prado (2014), "The Deflated Sharpe Ratio", numerical example: DSR ~ 0.9004
    d = deflated_sharpe(n_trials=100, var_trials=0.5 / 250, sharpe=2.5 / math.sqrt(250), n_obs=1250, skew=-3,
                        kurtosis=10)
    assert d.sr0 * math.sqrt(250) == pytest.approx(1.7897, abs=1e-3)
    assert d.dsr == pytest.approx(0.9004, abs=1e-4)


def test_psr_is_half_at_the_threshold_and_monotone():
    assert probabilistic_sharpe(0.1, 0.1, 500) == pytest.approx(0.5)
    assert probabilistic_sharpe(0.2, 0.1, 500) > probabilistic_sharpe(0.15, 0.1, 500) > 0.5
    with pytest.raises(StatsInputError, match='not positive'): probabilistic_sharpe(1.0, 0.0, 100, skew=5.0,
                                                                                    kurtosis=3.0)


def test_dsr_from_returns():
    rng = np.random.default_rng(5)
    r = rng.normal(0.001, 0.01, 1000)
    d = deflated_sharpe(r, n_trials=10, var_trials=0.0005)
    assert d.n_obs == 1000 and d.sharpe == pytest.approx(r.mean() / r.std(ddof=1)) and 0 < d.dsr < 1
    with pytest.raises(StatsInputError, match='constant'): deflated_sharpe(np.ones(10), n_trials=10, var_trials=0.1)


def test_pbo_known_cases():
    rng = np.random.default_rng(11)
    x = rng.normal(0, 0.01, (320, 5)); x[:, 2] += 0.03
    assert pbo_cscv(x, n_splits=8).pbo == 0.0
    t = np.full((320, 2), -0.01) + rng.normal(0, 0.001, (320, 2)); t[:160, 0] += 0.02; t[160:, 1] += 0.02
    r = pbo_cscv(t, n_splits=2)
    assert r.pbo == 1.0 and r.prob_oos_loss == 1.0 and r.n_combinations == 2


def test_pbo_hostile():
    with pytest.raises(StatsInputError, match='two variants'): pbo_cscv(np.zeros((40, 1)))
    with pytest.raises(StatsInputError, match='rows'): pbo_cscv(np.zeros((10, 3)), n_splits=8)
    with pytest.raises(StatsInputError, match='NaN'): pbo_cscv(np.full((40, 3), np.nan), n_splits=2)


def test_mcs_and_spa_find_the_bad_model():
    rng = np.random.default_rng(2)
    e = rng.normal(size=(600, 1))
    L = pd.DataFrame({'rw': e[:, 0] ** 2, 'twin': (e[:, 0] + rng.normal(0, 0.05, 600)) ** 2,
                      'bad': (e[:, 0] + 1.0) ** 2})
    m = model_confidence_set(L, reps=200, seed=1)
    assert 'bad' in m.excluded and 'rw' in m.included and m.pvalues['bad'] < 0.1
    s = spa_test(L, 'bad', reps=200, seed=1)      # something beats 'bad'
    assert s.pvalue_consistent < 0.05 and s.best_model in ('rw', 'twin')
    with pytest.raises(StatsInputError, match='two models'): model_confidence_set(L[['rw']])
