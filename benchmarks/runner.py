"""ModelRunner speed: all models for one ticker sequentially (baseline, in this process) vs in parallel on a warm
ModelPool, and the bundled universe's run time per ticker. The LLM is left out (no Ollama here; its cost is the
server's, not ours). Targets: one ticker well under 5 s (aim < 1 s); the universe on 2 cores under 60 s.

    .venv/bin/python benchmarks/runner.py [--workers 2] [--repeat 3]
"""
import argparse, statistics, sys, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--workers', type=int, default=2)
    ap.add_argument('--repeat', type=int, default=3)
    args = ap.parse_args()

    from trading_workbench.core.clock import FixedClock
    from trading_workbench.core.config import Settings
    from trading_workbench.core.types import utc
    from trading_workbench.data.sources import BundledSource
    from trading_workbench.signals.runner import ModelPool, ModelRunner, TickerContext, _cut, default_jobs, execute_job

    settings = Settings.load(ROOT / 'settings.ini', env={})
    jobs = [j for j in default_jobs(settings) if j.name != 'llm']
    as_of, src = utc('2018-02-07 21:00'), BundledSource()
    tickers = list(settings.universe.tickers)
    bars = {t: src.history(t) for t in tickers}
    clock = FixedClock(as_of)
    ctx = TickerContext('AAPL', _cut(bars['AAPL'], 'AAPL', as_of, settings.runner.history_days), as_of,
                        settings.runner.horizon)
    print(f"models: {[j.name for j in jobs]}; history {len(ctx.bars)} bars; horizon {ctx.horizon}; workers "
          f"{args.workers}")

    for j in jobs: execute_job(j, ctx)                        # imports and caches warm, as in a pool's workers
    seq = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        res = [execute_job(j, ctx) for j in jobs]
        seq.append(time.perf_counter() - t0)
        bad = [r for r in res if r.status != 'ok']
        if bad: sys.exit(f"baseline failed: {[(r.error_type, r.message) for r in bad]}")
    per_model = {j.name: round(r.seconds, 3) for j, r in zip(jobs, res)}

    pool = ModelPool(args.workers)
    try:
        t0 = time.perf_counter(); pool.warm(); warm_s = time.perf_counter() - t0
        runner = ModelRunner(pool, jobs, clock=clock, timeout_s=settings.runner.model_timeout_s, slots=args.workers,
                             horizon=settings.runner.horizon, history_days=settings.runner.history_days)
        runner.run({'AAPL': bars['AAPL']}, as_of=as_of)      # first task on each worker pays its own warm-up
        par = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            rep = runner.run({'AAPL': bars['AAPL']}, as_of=as_of)
            par.append(time.perf_counter() - t0)
            if rep.failures: sys.exit(f"parallel run failed: {rep.summary()['failures']}")
        t0 = time.perf_counter()
        urep = runner.run(bars, as_of=as_of)
        uni = time.perf_counter() - t0
    finally:
        pool.shutdown()

    s, p = statistics.median(seq), statistics.median(par)
    print(f"per model (sequential, s): {per_model}")
    print(f"pool start + warm-up ({args.workers} workers): {warm_s:.2f} s (once per process)")
    print(f"one ticker, all models, sequential (baseline): {s:.3f} s")
    print(f"one ticker, all models, parallel on ModelPool: {p:.3f} s   ratio sequential/parallel = {s / p:.2f}x")
    n_ok = sum(o.status == 'ok' for o in urep.outcomes)
    print(f"universe: {len(tickers)} tickers x {len(jobs)} models = {len(urep.outcomes)} jobs ({n_ok} ok) in {uni:.2f} "
          f"s "
          f"= {uni / len(tickers):.3f} s per ticker; vs sequential estimate {s * len(tickers):.2f} s: ratio "
          f"{s * len(tickers) / uni:.2f}x")
    if urep.failures: print(f"failures: {[(o.ticker, o.model, o.error_type) for o in urep.failures]}")
    print(f"targets: one ticker < 1 s: {'met' if p < 1 else 'MISSED'}; universe < 60 s: "
          f"{'met' if uni < 60 else 'MISSED'}")


if __name__ == '__main__':
    main()
