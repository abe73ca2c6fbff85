"""The forecast metrics validation reports: relative RMSE, hit rate with an interval on non-overlapping origins,
Brier vs base rate."""
from __future__ import annotations
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from trading_workbench.models.base import ModelInputError
from trading_workbench.models.metrics import brier_skill, hit_rate_interval, relative_rmse


@settings(max_examples=60, deadline=None)
@given(st.integers(20, 400), st.integers(1, 10), st.integers(0, 10_000))
def test_hit_rate_interval_counts_non_overlapping_origins(n, step, seed):
    rng = np.random.default_rng(seed)
    ref = 100 + rng.normal(size=n).cumsum().clip(-50, 50)
    act, pred = ref * np.exp(rng.normal(0, 0.01, n)), ref * np.exp(rng.normal(0, 0.01, n))
    h = hit_rate_interval(act, pred, ref, step=step)
    assert h.n == n and h.n_independent == len(range(0, n, step))
    assert h.lower <= h.rate <= h.upper and 0 <= h.lower and h.upper <= 1
    wide = hit_rate_interval(act, pred, ref, step=1)
    # fewer independent origins, never a narrower interval
    assert (h.upper - h.lower) >= (wide.upper - wide.lower) - 1e-12


def test_hit_rate_ignores_outcomes_that_did_not_move():
    ref = np.array([10.0, 10, 10, 10])
    act = np.array([11.0, 10, 9, 10])
    pred = np.array([10.5, 10.5, 10.5, 9.5])
    h = hit_rate_interval(act, pred, ref)
    assert h.n == 2 and h.rate == 0.5
    flat = hit_rate_interval(ref, pred, ref)
    assert flat.n == 0 and np.isnan(flat.rate) and np.isnan(flat.lower)


@pytest.mark.parametrize('kw', [dict(step=0), dict(step=1.5), dict(level=1.0), dict(level=0)])
def test_hit_rate_bad_options(kw):
    with pytest.raises(ModelInputError): hit_rate_interval([1.0, 2], [1.5, 1.5], [1.2, 1.2], **kw)


def test_brier_skill():
    o = np.array([1.0, 0, 1, 1, 0, 1, 1, 0])
    perfect = brier_skill(o, o)
    assert perfect['brier'] == 0 and perfect['brier_skill'] == 1
    base = brier_skill(np.full(len(o), o.mean()), o)
    assert base['brier'] == pytest.approx(base['brier_base']) and base['brier_skill'] == pytest.approx(0)
    # a constant outcome has no base-rate uncertainty
    assert np.isnan(brier_skill([0.5, 0.5], [1.0, 1.0])['brier_skill'])
    for bad in ([1.2, 0.5], [np.nan, 0.5]):
        with pytest.raises(ModelInputError): brier_skill(bad, [1.0, 0.0])


def test_relative_rmse():
    a = np.array([1.0, 2, 3, 4])
    assert relative_rmse(a, a + 1, a + 2) == pytest.approx(0.5)
    with pytest.raises(ModelInputError, match='zero error'): relative_rmse(a, a + 1, a)
    with pytest.raises(ModelInputError): relative_rmse(a, a[:2], a)
