"""SAMoSSA 1.1 and MSSA-RL 1.1: no wild forecasts, no explosive recursion, and no move without evidence."""
from __future__ import annotations
import numpy as np
import pandas as pd
from hypothesis import given, settings as hsettings, strategies as st
from trading_workbench.models.base import bundled_closes
from trading_workbench.models.mssa_rl import MSSARL
from trading_workbench.models.samossa import SAMoSSA, ar_spectral_radius

ORCL = bundled_closes('ORCL')['ORCL']


def test_samossa_moves_stay_within_their_bound_on_orcl():
    "ORCL is where 1.0 exploded at h=5 (224 of 1,000 forecasts doubled or halved the price): every move is now bounded."
    m = SAMoSSA(min_t=0.0).fit(ORCL.iloc[:300])          # min_t=0: let it move whenever the held-out slope is positive
    worst = 0.0
    for i in range(300, 800):
        f = m.forecast(5)
        step = m.step_sd_ * m.sd_                           # one-bar s.d. of the log price
        moves = np.abs(np.log(np.array(f.mean) / ORCL.iloc[i - 1]))
        assert (moves <= m.max_move * step * np.sqrt(np.arange(1, 6)) + 1e-9).all(), (i, moves)
        worst = max(worst, float(moves.max()))
        m.update(ORCL.iloc[i:i + 1])
    assert worst < np.log(2)


def test_samossa_drops_an_explosive_ar_and_holds_without_evidence():
    rng = np.random.default_rng(3)
    y = pd.Series(100 * np.exp(np.cumsum(rng.normal(0, 0.01, 600))), index=pd.bdate_range('2015-01-01', periods=600))
    m = SAMoSSA().fit(y)
    assert ar_spectral_radius(m.ar_phi_) < m.max_ar_root          # whatever was estimated, what is used is stable
    assert m.shrink_ == 0.0                                       # a pure random walk: no held-out evidence, no move
    np.testing.assert_allclose(m.forecast(5).mean, y.iloc[-1], rtol=1e-9)


@hsettings(max_examples=15, deadline=None)
@given(st.floats(0.1, 3.0), st.integers(0, 40))
def test_samossa_forecast_is_finite_and_bounded_for_any_scale(scale, shift):
    "Any price level and any window of the bundled data: finite forecasts within the bound."
    y = ORCL.iloc[shift:shift + 400] * scale
    m = SAMoSSA(min_t=0.0).fit(y)
    f = m.forecast(5)
    moves = np.abs(np.log(np.array(f.mean) / y.iloc[-1]))
    assert np.isfinite(f.mean).all() and np.isfinite(f.upper).all()
    assert (moves <= m.max_move * m.step_sd_ * m.sd_ * np.sqrt(np.arange(1, 6)) + 1e-9).all()


def test_mssa_rl_moves_only_on_evidence():
    "1.1 takes the learnt stance only where its training t-statistic clears min_t; min_t=0 is 1.0's greedy policy."
    y = bundled_closes('AAPL')['AAPL'].iloc[-900:]
    strict, loose = MSSARL().fit(y.iloc[:-60]), MSSARL(min_t=0.0).fit(y.iloc[:-60])
    # the same policy is learnt; only the bar for acting differs
    np.testing.assert_array_equal(strict.Q_, loose.Q_)
    for i in range(60):
        s = strict._state(strict.slope_now_[0], strict.tracker_.var, strict.tracker_.since_cp)
        greedy = strict.actions[int(np.argmax(strict.Q_[s]))][0]
        assert loose.decide()[1] == greedy
        f = strict.forecast(3)
        if strict.evidence_t_[s] > strict.min_t: assert strict.decide()[1] == greedy
        else:
            assert strict.decide()[1] == 'hold' and f.diagnostics['stance'] == 'hold'
            np.testing.assert_allclose(f.mean, y.iloc[-61 + i], rtol=1e-9)     # the random walk's forecast
        strict.update(y.iloc[-60 + i:][:1]); loose.update(y.iloc[-60 + i:][:1])
