"""TimeSeriesFeatureBuilder: no look-ahead at many cut points, agreement with per-ticker pandas, short series,
parameters, and the feature store round trip."""
import numpy as np
import pandas as pd
import pytest

from trading_workbench.data.sources import BundledSource
from trading_workbench.features.builder import ShortSeriesError, TimeSeriesFeatureBuilder, research_decompose
from trading_workbench.store.db import Store

SRC = BundledSource()
UNIVERSE = {t: SRC.history(t) for t in ('AAPL', 'MSFT', 'GOOG', 'ORCL', 'XOM', '^GSPC')}


@pytest.mark.parametrize('cut', ['2014-01-02', '2015-03-31', '2016-06-30', '2017-12-29'])
def test_no_look_ahead(cut):
    fb = TimeSeriesFeatureBuilder(seasonal_period=63)
    full = fb.build_many(UNIVERSE)
    past = fb.build_many({t: b[:cut] for t, b in UNIVERSE.items()})
    pd.testing.assert_frame_equal(past, full.loc[past.index])


def test_changing_a_future_bar_changes_no_past_feature():
    fb = TimeSeriesFeatureBuilder(seasonal_period=21)
    bars = UNIVERSE['MSFT']
    shocked = bars.copy(); shocked.loc['2017-06-01':, 'close'] *= 3
    a, b = fb.build(bars, 'MSFT'), fb.build(shocked, 'MSFT')
    pd.testing.assert_frame_equal(a[:'2017-05-31'], b[:'2017-05-31'])
    assert not np.allclose(a.loc['2017-06-01':, 'rolling_mean_5'], b.loc['2017-06-01':, 'rolling_mean_5'])


def test_matches_per_ticker_pandas():
    fb = TimeSeriesFeatureBuilder()
    f = fb.build_many(UNIVERSE)
    for t, b in UNIVERSE.items():
        x = f.xs(t, level='ticker')
        pd.testing.assert_index_equal(x.index, b.index)
        np.testing.assert_allclose(x['close_lag_10'], b.close.shift(10))
        np.testing.assert_allclose(x['return_20'], b.close.pct_change(20, fill_method=None))
        np.testing.assert_allclose(x['rolling_std_60'], b.close.rolling(60).std())
        np.testing.assert_allclose(x['diff_5'], b.close.diff(5))


def test_short_series():
    fb = TimeSeriesFeatureBuilder(seasonal_period=252)
    short = UNIVERSE['AAPL'][:300]
    f = fb.build(short, 'AAPL')
    assert f[['trend', 'seasonal', 'residual']].iloc[:, 1:].isna().all().all()
    assert f['rolling_mean_60'].notna().sum() == 300 - 59
    with pytest.raises(ShortSeriesError, match='needs at least 504'):
        research_decompose(short.close, 252)
    assert research_decompose(UNIVERSE['AAPL'].close, 252).seasonal.notna().all()


def test_parameters_and_version():
    assert TimeSeriesFeatureBuilder().version != TimeSeriesFeatureBuilder(seasonal_period=5).version
    assert TimeSeriesFeatureBuilder().version == TimeSeriesFeatureBuilder().version
    with pytest.raises(ValueError, match='lags'):
        TimeSeriesFeatureBuilder(lags=(0, 5))
    with pytest.raises(ValueError, match='seasonal_period'):
        TimeSeriesFeatureBuilder(seasonal_period=1)
    bad = UNIVERSE['AAPL'].iloc[::-1]
    with pytest.raises(ValueError, match='sorted and unique'):
        TimeSeriesFeatureBuilder().build(bad, 'AAPL')


def test_feature_store_round_trip(tmp_path):
    store = Store(f'sqlite:///{tmp_path}/f.db')
    fb = TimeSeriesFeatureBuilder()
    f = fb.build_many({t: UNIVERSE[t] for t in ('GOOG', 'ORCL')})
    assert fb.persist(store, f) == len(f)
    for t in ('GOOG', 'ORCL'):
        pd.testing.assert_frame_equal(fb.load(store, t), f.xs(t, level='ticker'), check_freq=False)
    assert store.features('GOOG', TimeSeriesFeatureBuilder(seasonal_period=5).version).empty
    store.close()
