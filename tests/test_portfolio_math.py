"Every figure of `risk.portfolio_math` against empyrical-reloaded (and scipy) on each bundled ticker's real closes."
import math

import empyrical as ep
import numpy as np
import pandas as pd
import pytest
from scipy import stats

from trading_workbench.core.config import Settings
from trading_workbench.models.base import bundled_closes
from trading_workbench.risk import portfolio_math as pm
from importlib.resources import files

TICKERS = Settings.load(files('trading_workbench') / '..' / 'settings.ini', env={}).universe.tickers


@pytest.mark.parametrize('ticker', TICKERS)
def test_figures_match_reference(ticker):
    eq = bundled_closes(ticker).iloc[:, 0] * 1000
    r = pm.simple_returns(eq)
    s = pm.performance_summary(eq, periods_per_year=252)
    assert math.isclose(s.volatility, ep.annual_volatility(r), rel_tol=1e-10)
    assert math.isclose(s.sharpe, ep.sharpe_ratio(r), rel_tol=1e-9)
    assert math.isclose(s.sortino, ep.sortino_ratio(r), rel_tol=1e-9)
    assert math.isclose(s.max_drawdown, -ep.max_drawdown(r), rel_tol=1e-10)
    assert math.isclose(s.annual_return, ep.annual_return(r), rel_tol=1e-9)
    assert math.isclose(s.var_hist, -ep.value_at_risk(r, cutoff=0.05), rel_tol=1e-10)
    assert math.isclose(s.es_hist, -ep.conditional_value_at_risk(r, cutoff=0.05), rel_tol=1e-10)
    nd = stats.norm(r.mean(), r.std(ddof=1))
    assert math.isclose(s.var_param, -nd.ppf(0.05), rel_tol=1e-10)
    assert math.isclose(s.es_param, -nd.expect(lambda x: x, ub=nd.ppf(0.05), conditional=True), rel_tol=1e-6)
    cum = (1 + r).cumprod()
    assert math.isclose(s.current_drawdown, 1 - cum.iloc[-1] / max(1.0, cum.max()), rel_tol=1e-9, abs_tol=1e-12)
    # weekly sampling: the annualisation follows periods_per_year
    w = eq.resample('W-FRI').last().dropna()
    assert math.isclose(pm.sharpe(pm.simple_returns(w), 52), ep.sharpe_ratio(pm.simple_returns(w), period='weekly'),
                        rel_tol=1e-9)


def test_trade_figures_match_reference():
    # per-trade P&L: each ticker's 20-day holding-period profit on 100 shares, a real series with wins and losses
    closes = bundled_closes(*TICKERS[:10])
    pnl = pd.Series((closes.diff(20).iloc[20::20] * 100).to_numpy().ravel())
    assert 0 < pm.win_rate(pnl) < 1
    assert math.isclose(pm.profit_factor(pnl), ep.omega_ratio(pnl, required_return=0.0, annualization=1), rel_tol=1e-12)
    assert math.isclose(pm.win_rate(pnl), 1 - stats.percentileofscore(pnl, 0.0, kind='weak') / 100, rel_tol=1e-12)


@pytest.mark.parametrize('bad', [np.nan, np.inf, 0.0, -1.0])
def test_bad_equity_is_a_typed_error(bad):
    eq = pd.Series([1e6, 1.01e6, bad, 1.02e6])
    with pytest.raises(pm.PortfolioMathError):
        pm.performance_summary(eq)


def test_daily_equity_takes_the_last_mark_of_each_day():
    idx = pd.DatetimeIndex(['2018-02-05 15:00', '2018-02-05 21:00', '2018-02-06 21:00'], tz='UTC')
    frame = pd.DataFrame({'cash': [0.0, 0.0, 0.0], 'equity': [100.0, 95.0, 97.0]}, index=idx)
    assert pm.daily_equity(frame).tolist() == [95.0, 97.0]
