"""Metrics (properties) and forecast -> signal (validation, calibration on held-out real data)."""
from __future__ import annotations
import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from trading_workbench.core.types import Action, Forecast, Provenance, utc
from trading_workbench.models.base import ModelInputError, bundled_closes
from trading_workbench.models.metrics import (brier_score, directional_accuracy, expected_calibration_error,
                                              forecast_report, interval_coverage, mae, mase, rmse, smape)
from trading_workbench.models.sarimax import SARIMAXForecaster
from trading_workbench.models.signals import (
    DEFAULT_CALIBRATORS,
    ConfidenceCalibrator,
    calibration_sample,
    forecast_to_signal,
    forecast_z,
    risk_score,
)

prices = st.lists(st.floats(1.0, 1000.0), min_size=2, max_size=50)


@given(prices, st.data())
@settings(max_examples=60, deadline=None)
def test_error_metric_properties(a, data):
    p = data.draw(st.lists(st.floats(1.0, 1000.0), min_size=len(a), max_size=len(a)))
    assert 0 <= mae(a, p) <= rmse(a, p) + 1e-9
    assert 0 <= smape(a, p) <= 200 + 1e-9
    assert rmse(a, a) == 0 and smape(a, a) == 0
    hr = directional_accuracy(a, p, [1.0] * len(a))
    assert math.isnan(hr) or 0 <= hr <= 1


def test_metric_errors_name_the_input():
    with pytest.raises(ModelInputError, match='predicted: expected 3 values'): rmse([1, 2, 3], [1, 2])
    with pytest.raises(ModelInputError, match='lower: above upper'): interval_coverage([1.0], [2.0], [1.5])
    with pytest.raises(ModelInputError, match='outcome: must be 0/1'): brier_score([0.5], [2])
    with pytest.raises(ModelInputError, match='insample'): mase([1.0], [1.0], [5.0])


def test_report_always_carries_direction_and_calibration():
    rng = np.random.default_rng(0)
    ref = 100 + rng.normal(size=500).cumsum()
    actual = ref + rng.normal(size=500)
    pred = ref + 0.1 * (actual - ref) + rng.normal(scale=0.5, size=500)
    rep = forecast_report(actual, pred, ref, pred - 2, pred + 2, level=0.95, insample=ref, confidence=np.full(500, 0.6))
    assert {'rmse', 'mae', 'smape', 'mase', 'hit_rate', 'coverage', 'coverage_error', 'brier', 'ece'} <= set(rep)


def _prov() -> Provenance:
    return Provenance(model='samossa', version='1.0')


def test_signal_actions_and_bounds():
    up = Forecast('m', mean=(103.0,), lower=(99.0,), upper=(107.0,))
    down = Forecast('m', mean=(97.0,), lower=(93.0,), upper=(101.0,))
    sharp = ConfidenceCalibrator(0.0, 1.6)
    s_up = forecast_to_signal(up, 'AAPL', 100.0, utc('2018-02-07'), _prov(), calibrator=sharp)
    s_dn = forecast_to_signal(down, 'AAPL', 100.0, utc('2018-02-07'), _prov(), calibrator=sharp)
    # no calibrator: the model's bundled default (SAMoSSA: no directional skill, so no trade)
    s_def = forecast_to_signal(up, 'AAPL', 100.0, utc('2018-02-07'), _prov())
    assert s_def.confidence == pytest.approx(float(DEFAULT_CALIBRATORS[('samossa', 1)].predict(forecast_z(up,
                                                                                                          100.0)[1])))
    assert s_def.action is Action.HOLD
    unknown = Provenance(model='someone-else', version='1')
    assert forecast_to_signal(up, 'AAPL', 100.0, utc('2018-02-07'), unknown).confidence == 0.5
    assert s_up.action is Action.BUY and s_dn.action is Action.SELL
    assert 0.5 < s_up.confidence <= 1 and 0 < s_up.risk_score < 1 and s_up.expected_return == pytest.approx(0.03)
    # an anti-predictive calibrator (confidence < 0.5) turns the signal into HOLD, never a silent flip
    anti = ConfidenceCalibrator(intercept=-0.5, slope=0.0)
    assert forecast_to_signal(up, 'AAPL', 100.0, utc('2018-02-07'), _prov(), calibrator=anti).action is Action.HOLD
    with pytest.raises(ModelInputError, match='current_price'): forecast_to_signal(up, 'AAPL', 0.0, utc('2018-02-07'),
                                                                                   _prov())
    with pytest.raises(ModelInputError, match='volatility'): risk_score(up, 100.0, volatility=float('nan'))


def test_risk_score_rises_with_garch_volatility():
    f = Forecast('m', mean=(100.0,), lower=(98.0,), upper=(102.0,))
    assert risk_score(f, 100.0, volatility=0.005) < risk_score(f, 100.0, volatility=0.04)
    _, z = forecast_z(f, 100.0)
    assert z == 0.0


def test_calibrator_recovers_a_known_relation():
    rng = np.random.default_rng(5)
    z = rng.normal(size=20000)
    p_true = 1 / (1 + np.exp(-(0.1 + 0.4 * np.abs(z))))
    hit = (rng.uniform(size=z.size) < p_true).astype(float)
    cal = ConfidenceCalibrator.fit(z, hit)
    assert cal.intercept == pytest.approx(0.1, abs=0.06) and cal.slope == pytest.approx(0.4, abs=0.06)
    with pytest.raises(ModelInputError, match='at least 30'): ConfidenceCalibrator.fit([1.0], [1.0])


def test_confidence_is_calibrated_on_held_out_tickers_and_period():
    """Fit the calibrator on SARIMAX 5-day walk-forward forecasts of 16 tickers in one year, check it on 8 others the
    next year: the stated confidence must match the observed direction hit rate (ECE < 0.03)."""
    fit_set = bundled_closes('AAPL', 'MSFT', 'JPM', 'XOM', 'KO', 'PG', 'INTC', 'BA', 'CSCO', 'HD', 'MMM', 'NKE', 'V',
                             'MA', 'MCD', 'IBM')
    test_set = bundled_closes('GOOGL', 'AMZN', 'JNJ', 'PEP', 'WMT', 'ORCL', 'CAT', 'DIS')
    train = calibration_sample(SARIMAXForecaster, fit_set.iloc[-900:], n_test=200, end=-250, horizon=5)
    held = calibration_sample(SARIMAXForecaster, test_set.iloc[-900:], n_test=245, horizon=5)
    assert train['date'].max() < held['date'].min() and not set(fit_set) & set(test_set)
    cal = ConfidenceCalibrator.fit(train['z'], train['hit'], horizon=5, groups=train['ticker'])
    p = cal.predict(held['z'])
    ece = expected_calibration_error(p, held['hit'])
    assert ece < 0.03, ece
    assert abs(p.mean() - held['hit'].mean()) < 0.03            # overall: stated = observed
    assert brier_score(p, held['hit']) < 0.25                  # no worse than a coin flip's 0.5


def test_calibration_sample_has_no_overlap():
    # SARIMAX: SAMoSSA (1.1) forecasts a move only with held-out evidence, so it has almost no directions to sample
    closes = bundled_closes('KO', 'PEP')
    s = calibration_sample(SARIMAXForecaster, closes.iloc[-600:], n_test=50)
    assert set(s['ticker']) == {'KO', 'PEP'} and s['hit'].isin([0.0, 1.0]).all() and np.isfinite(s['z']).all()


def test_default_calibrators_hold_on_held_out_tickers_next_year():
    "The bundled defaults (fitted without these tickers, on the year before) are calibrated on them, per model."
    test_set = bundled_closes('GOOGL', 'AMZN', 'JNJ', 'PEP', 'WMT', 'ORCL', 'CAT', 'DIS')
    from trading_workbench.models.garch import GARCHForecaster
    from trading_workbench.models.signals import default_calibrator
    for name, make in (('sarimax', SARIMAXForecaster), ('garch', GARCHForecaster)):
        held = calibration_sample(make, test_set.iloc[-900:], n_test=245, horizon=5)
        p = default_calibrator(name, 5).predict(held['z'])
        assert expected_calibration_error(p, held['hit']) < 0.06, name
