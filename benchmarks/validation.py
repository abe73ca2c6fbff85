"""Walk-forward validation speed: `twb validate` on the bundled universe, and the cost per origin per model.

Prints (1) the wall time of `twb validate` end to end (papermill, 53 tickers, SAMoSSA/SARIMAX/GARCH/MSSA-RL plus the
random-walk and drift baselines, 1,000 origins, h = 1 and 5, refit every 250 origins, `[runner]` executor: 2 worker
processes) against the 120 s target, at a small size first (5 tickers, 100 origins); (2) per model, the cost per
origin of the walk-forward (update() between refits) beside the baseline measured in the same run: refitting at every
origin, on a sample of tickers and origins (refitting every step over the full run would take hours).

The machine may be shared: wall times are noisy; the ratios in (2) are measured back to back on one core.

Run: .venv/bin/python benchmarks/validation.py [--skip-full]
"""
from __future__ import annotations
import contextlib, io, sys, tempfile, time
from pathlib import Path
from trading_workbench.cli import main as twb
from trading_workbench.models.base import bundled_closes
from trading_workbench.store.db import Store
from trading_workbench.validation.skill import model_specs
from trading_workbench.validation.walk_forward import WalkForwardPlan, walk_series

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_TICKERS, SAMPLE_ORIGINS = ('AAPL', 'JPM'), 40


def run_twb(tmp: Path, *args: str) -> tuple[float, dict]:
    """Wall seconds of `twb validate ARGS` on a scratch store (settings otherwise the
    repository's), and the run's phase times."""
    ini = tmp / f'settings-{time.monotonic_ns()}.ini'
    ini.write_text((ROOT / 'settings.ini').read_text().replace('url = sqlite:///runs/workbench.db',
                                                               f"url = sqlite:///{tmp / 'bench.db'}"))
    out = io.StringIO()
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(out): rc = twb(['--settings', str(ini), '--log-level', 'WARNING', 'validate',
                                                    '--quiet', *args])
    dt = time.perf_counter() - t0
    if rc != 0: raise SystemExit(f"twb validate {' '.join(args)} failed (rc {rc}):\n{out.getvalue()}")
    store = Store(f"sqlite:///{tmp / 'bench.db'}")
    phases = store.runs('validation', limit=1).report.iloc[0]['phases']
    store.close()
    return dt, phases


def per_origin(spec, plan: WalkForwardPlan) -> tuple[float, int]:
    "Seconds per origin of `spec` over the sample tickers under `plan`, and origins walked."
    closes = bundled_closes(*SAMPLE_TICKERS)
    t, n = 0.0, 0
    for tk in SAMPLE_TICKERS:
        t0 = time.perf_counter()
        _, d = walk_series(spec, closes[tk], plan, tk)
        t += time.perf_counter() - t0
        n += d.forecasts
    return t / max(n, 1), n


def main(skip_full: bool = False) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        small, _ = run_twb(tmp, '--tickers', 'AAPL,MSFT,JPM,XOM,KO', '--origins', '100', '--reps', '200')
        print(f"# twb validate, small: 5 tickers x 6 models x 100 origins x h=1,5   {small:7.1f} s")
        if not skip_full:
            full, ph = run_twb(tmp)
            print(
                f"# twb validate, full: 53 tickers x 6 models x 1000 origins x h=1,5  {full:7.1f} s   "
                f"target < 120 s on 2 cores: {'OK' if full < 120 else 'MISSED'}   (small -> full x{full / small:.1f})"
            )
            rest = full - ph['walk_forward'] - ph['skill'] - ph['compare'] - ph['store']
            print(f"  walk-forward {ph['walk_forward']:.1f} s wall, {ph['walk_forward_cpu']:.1f} s CPU in the workers "
                  f"(= {ph['walk_forward_cpu'] / 2:.1f} s on 2 idle cores); skill {ph['skill']:.1f} s, MCS/SPA/PBO "
                  f"{ph['compare']:.1f} s, "
                  f"store {ph['store']:.1f} s (CPU here {ph['here_cpu']:.1f} s); start-up, papermill and the rest "
                  f"{rest:.1f} s")
            idle = ph['walk_forward_cpu'] / 2 + ph['skill'] + ph['compare'] + ph['store'] + small
            print(f"  on 2 idle cores this would take about {idle:.0f} s (worker CPU / 2 + the serial phases + the "
                  f"small run's wall as the fixed cost)")
    print(f"\n# cost per origin per model ({len(SAMPLE_TICKERS)} tickers x {SAMPLE_ORIGINS} latest origins, h=1,5, one "
          f"core)")
    print(f"{'model':10s} {'refit 250 + update':>20s} {'refit every step':>18s} {'speed-up':>9s}")
    every = WalkForwardPlan(n_origins=SAMPLE_ORIGINS, refit_every=1)
    big = WalkForwardPlan(n_origins=1000, refit_every=250)
    total_long = total_every = 0.0
    for spec in model_specs():
        per_origin(spec, WalkForwardPlan(n_origins=5))                       # warm imports and caches
        # the cadence's true amortised cost over 1000 origins
        c_long, _ = per_origin(spec, big)
        c_every, _ = per_origin(spec, every)
        total_long += c_long; total_every += c_every
        print(f"{spec.name:10s} {c_long * 1e3:17.2f} ms {c_every * 1e3:15.2f} ms {c_every / c_long:8.1f}x")
    print(f"{'all four':10s} {total_long * 1e3:17.2f} ms {total_every * 1e3:15.2f} ms {total_every / total_long:8.1f}x")
    print("(refit 250 + update: measured over 1000 origins, 4 fits; refit every step: over the sample above)")
    print(f"implied model compute for 53 tickers x 1000 origins on 2 idle cores: {53 * 1000 * total_long / 2:6.1f} s "
          f"with the cadence, "
          f"{53 * 1000 * total_every / 2 / 3600:5.1f} h refitting every step")


if __name__ == '__main__':
    main('--skip-full' in sys.argv[1:])
