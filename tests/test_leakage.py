"""Truncation leak tests: what is computed at or before a date t must not change when the history after t exists.

Features: every column of `features.builder` computed on the full history equals the same column computed on
the history cut at t, at every date up to t (the backtest builds features once and reads them day by day).
Forecasters: SAMoSSA, SARIMAX, GARCH, MSSA-RL and the ensemble, run the way production runs them (the runner
cuts the bars at `as_of`; the backtest's `ModelBook` fits at the first origin and updates after), give the same
forecast at every origin up to t whether the bars handed to them end at t or run on to the end of the data."""
from datetime import timedelta
from functools import partial

import numpy as np
import pandas as pd
import pytest

from trading_workbench.core.clock import FixedClock
from trading_workbench.data.sources import BundledSource
from trading_workbench.features.builder import TimeSeriesFeatureBuilder
from trading_workbench.models.ensemble import Ensemble
from trading_workbench.models.garch import GARCHForecaster
from trading_workbench.models.mssa_rl import MSSARL
from trading_workbench.models.samossa import SAMoSSA
from trading_workbench.models.sarimax import SARIMAXForecaster
from trading_workbench.ops.daily import session_close
from trading_workbench.signals.runner import ModelJob, ModelRunner, forecaster_job, run_forecaster
from trading_workbench.validation.backtest import InlineExecutor, ModelBook

SOURCE = BundledSource()
BARS = {t: SOURCE.history(t) for t in ('AAPL', 'KO', 'V')}          # V starts later: a second, shorter index

def frame_equal_upto(full: pd.DataFrame, cut: pd.DataFrame, t: pd.Timestamp) -> None:
    "Every value of `cut` (all dated <= t) equals `full`'s on the same date, NaN where NaN."
    a = full.loc[full.index.get_level_values('date') <= t].sort_index()
    b = cut.sort_index()
    assert a.index.equals(b.index)
    pd.testing.assert_frame_equal(a, b, check_exact=True)

@pytest.mark.parametrize('t', ['2014-03-03', '2016-06-30', '2017-12-29'])
def test_features_do_not_look_ahead(t):
    t = pd.Timestamp(t)
    builder = TimeSeriesFeatureBuilder()
    full = builder.build_many(BARS)
    cut = builder.build_many({k: b.loc[:t] for k, b in BARS.items() if b.index[0] <= t})
    assert list(cut.columns) == builder.feature_names and int(cut.notna().sum().sum()) > 0
    frame_equal_upto(full, cut, t)

def make_ensemble():
    return Ensemble({'samossa': SAMoSSA(), 'garch': GARCHForecaster()}, window=20)

JOBS = [forecaster_job(SAMoSSA), forecaster_job(SARIMAXForecaster), forecaster_job(GARCHForecaster),
        forecaster_job(MSSARL), ModelJob('ensemble', partial(run_forecaster, make_ensemble), Ensemble.version)]

def signals(bars: pd.DataFrame, origins, refit: str) -> dict:
    "The signal of every job at every origin, the backtest's way: a `ModelBook` over the runner, bars cut per session."
    book = ModelBook(refit)
    clock = FixedClock(session_close(origins[0]) - timedelta(days=1))
    runner = ModelRunner(InlineExecutor(), book.jobs(JOBS), clock=clock, horizon=5, history_days=600)
    out = {}
    for s in origins:
        clock.set(session_close(s) + timedelta(minutes=5))
        rep = runner.run({'AAPL': bars.loc[:s]}, as_of=clock.now())
        assert [o.status for o in rep.outcomes] == ['ok'] * len(JOBS), rep.summary()['failures']
        out.update({(s, sig.model): (sig.action, sig.confidence, sig.expected_return, sig.risk_score)
                    for sig in rep.signals})
    return out

def test_forecasts_do_not_look_ahead():
    bars = BARS['AAPL']
    origins = list(bars.index[-260:-252])                          # eight origins, one fit then seven updates ...
    t = origins[-1]
    full = signals(bars, origins, refit='Y')                        # ... with the rest of the data after them
    cut = signals(bars.loc[:t], origins, refit='Y')                 # ... and with the history cut at the last origin
    assert len(full) == len(origins) * len(JOBS)
    assert full == cut

def test_forecast_at_origin_ignores_later_bars():
    "At a refit origin the runner's cut hands every model exactly the bars up to the origin."
    bars, t = BARS['AAPL'], BARS['AAPL'].index[-300]
    clock = FixedClock(session_close(t) + timedelta(minutes=5))
    runner = ModelRunner(InlineExecutor(), JOBS, clock=clock, horizon=5, history_days=600)
    later = runner.run({'AAPL': bars}, as_of=clock.now())           # bars run two more years past t
    now = runner.run({'AAPL': bars.loc[:t]}, as_of=clock.now())
    key = lambda r: {s.model: (s.action, s.confidence, s.expected_return, s.risk_score, s.provenance.data_end)
                     for s in r.signals}
    assert len(later.signals) == len(JOBS) and key(later) == key(now)
    assert all(s.provenance.data_end.date() == t.date() for s in later.signals)
    assert np.isfinite([s.expected_return for s in later.signals]).all()
