"""Forecaster speed on one real ticker (~1000 bars).

Prints (1) fit+forecast time per model and for all four together (target: < 0.5 s), and (2) for a 250-step
one-step-ahead walk-forward, `update()` against refitting at every step: the time ratio (target: >= 50x) and
the RMSE difference (target: update's RMSE at most 1% above refit's). Hit rates are printed next to RMSE. The baseline
of each ratio (refit every step) is measured in the same run.

Run: .venv/bin/python benchmarks/models.py [TICKER]
"""
from __future__ import annotations
import sys, time
import numpy as np
from trading_workbench.models.base import bundled_closes
from trading_workbench.models.garch import GARCHForecaster
from trading_workbench.models.metrics import rmse, directional_accuracy
from trading_workbench.models.mssa_rl import MSSARL
from trading_workbench.models.samossa import SAMoSSA
from trading_workbench.models.sarimax import SARIMAXForecaster

MODELS = {'samossa': SAMoSSA, 'sarimax': SARIMAXForecaster, 'garch': lambda: GARCHForecaster(refit_every=None),
          'mssa_rl': MSSARL}
N_FIT, N_WALK, HORIZON = 1000, 250, 5


def best_of(fn, repeat: int = 3) -> float:
    "Fastest of `repeat` runs of `fn` (seconds)."
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter(); fn(); times.append(time.perf_counter() - t0)
    return min(times)


def walk(make, y, refit: bool) -> tuple[float, np.ndarray]:
    "One-step walk-forward over the last N_WALK bars: (seconds, forecasts)."
    n0 = len(y) - N_WALK
    preds = np.empty(N_WALK)
    t0 = time.perf_counter()
    m = make().fit(y.iloc[:n0])
    for i in range(N_WALK):
        preds[i] = m.forecast(1).mean[0]
        if refit: m = make().fit(y.iloc[:n0 + i + 1])
        else: m.update(y.iloc[n0 + i:n0 + i + 1])
    return time.perf_counter() - t0, preds


def main(ticker: str = 'AAPL') -> None:
    y = bundled_closes(ticker)[ticker].iloc[-(N_FIT + N_WALK):]
    fit_y = y.iloc[:N_FIT]
    for make in MODELS.values(): make().fit(fit_y).forecast(HORIZON)          # warm imports and caches
    print(f"# {ticker}: fit on {N_FIT} bars + forecast {HORIZON} steps (best of 3)")
    total = 0.0
    for name, make in MODELS.items():
        t = best_of(lambda: make().fit(fit_y).forecast(HORIZON))
        total += t
        print(f"{name:8s} fit+forecast {t * 1000:8.1f} ms")
    print(f"all four     fit+forecast {total * 1000:8.1f} ms   target < 500 ms: {'OK' if total < 0.5 else 'MISSED'}")
    print(f"\n# {N_WALK}-step one-step-ahead walk-forward: update() vs refit every step (baseline)")
    actual, ref = y.iloc[-N_WALK:].to_numpy(), y.iloc[-N_WALK - 1:-1].to_numpy()
    t_up_all = t_re_all = 0.0
    for name, make in MODELS.items():
        t_up, p_up = walk(make, y, refit=False)
        t_re, p_re = walk(make, y, refit=True)
        t_up_all += t_up; t_re_all += t_re
        r_up, r_re = rmse(actual, p_up), rmse(actual, p_re)
        d = 100 * (r_up - r_re) / r_re
        ok = ('speed OK' if t_re / t_up >= 50 else 'speed MISSED') + (', RMSE OK' if d <= 1.0 else ', RMSE MISSED')
        print(f"{name:8s} update {t_up:6.3f} s  refit {t_re:6.3f} s  speed-up x{t_re / t_up:6.1f}  "
              f"RMSE update {r_up:.4f} refit {r_re:.4f} ({d:+.2f}%)  hit rate update "
              f"{directional_accuracy(actual, p_up, ref):.3f} "
              f"refit {directional_accuracy(actual, p_re, ref):.3f}  [{ok}]")
    print(f"all four update {t_up_all:7.3f} s  refit {t_re_all:7.3f} s  speed-up x{t_re_all / t_up_all:.1f}   target "
          f">= 50x")


if __name__ == '__main__':
    main(*sys.argv[1:2])
