"""The daily run's wall time, stage by stage: `twb run daily` on the 25-ticker universe under papermill (the aim is
under 6 s), beside two baselines measured in the same run: the same steps called in one process without papermill
(the floor papermill adds to), and the code before this work (`--old REV`, default 2a12979: the notebook saved around
every cell, a graceful kernel stop, the model pool started when the models start), unpacked from git and run the same way.

Stages of a papermill run, from the clocks it leaves behind: the launch time taken here, papermill's start, each
cell's start and end (the executed notebook's metadata) and the process's exit:
- interpreter+imports: `twb` starting, importing, reading settings and the store, up to papermill's start;
- kernel start: papermill reading the notebook, starting the kernel, up to the first cell;
- the cells, grouped: setup (the kernel's imports, settings, store, the run's record), data+features, models+signals,
  router+orders, risk and the rest;
- notebook save: the time between cells (papermill wrote the notebook there) and after the last one (the final write,
  the kernel's stop, twb printing the run and exiting).
The in-process baseline times the same steps one by one, store writes apart.

CPU is the children's user+system time (`resource.getrusage(RUSAGE_CHILDREN)`): twb, its kernel and the pool's workers;
not the pool's fork server (killed with the kernel, never reaped), which imports the model libraries (about 1.5 s).
The machine may be shared (the load average is printed): compare the ratios within one run.
Run: .venv/bin/python benchmarks/daily.py [--repeat N] [--old REV]
"""
from __future__ import annotations
import json, os, resource, subprocess, sys, tempfile, time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TWB = str(Path(sys.executable).parent / 'twb')
DAYS = ('2018-02-05', '2018-02-06', '2018-02-07')        # one warm-up day (fills the store's bar cache), then timed days
STAGES = ('interpreter+imports', 'kernel start', 'setup cell', 'data+features', 'models+signals', 'router+orders',
          'risk+summary', 'notebook save')
CELL_STAGE = (('market_data(', 'data+features'), ('daily_signals(', 'models+signals'),
              ('daily_bundles(', 'router+orders'), ('daily_orders(', 'router+orders'), ('risk_before_orders', 'router+orders'),
              ('Settings.load', 'setup cell'), ('start_run(', 'setup cell'))


def children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def stage_of(source: str) -> str:
    "The stage a cell belongs to, by the step it calls."
    return next((stage for key, stage in CELL_STAGE if key in source), 'risk+summary')


def papermill_stages(nb_path: Path, launched: datetime, ended: datetime) -> dict:
    "Seconds per stage of one executed notebook, from papermill's clocks and ours."
    nb = json.loads(nb_path.read_text())
    pm = nb['metadata']['papermill']
    t = lambda s: datetime.fromisoformat(s)
    out = dict.fromkeys(STAGES, 0.0)
    out['interpreter+imports'] = (t(pm['start_time']) - launched).total_seconds()
    cells = [c for c in nb['cells'] if c['cell_type'] == 'code' and c['metadata']['papermill'].get('start_time')]
    out['kernel start'] = (t(cells[0]['metadata']['papermill']['start_time']) - t(pm['start_time'])).total_seconds()
    prev_end = None
    for c in cells:
        m = c['metadata']['papermill']
        if prev_end is not None: out['notebook save'] += (t(m['start_time']) - prev_end).total_seconds()
        out[stage_of(''.join(c['source']))] += m['duration']
        prev_end = t(m['end_time'])
    out['notebook save'] += (ended - prev_end).total_seconds()      # the final write and the process's exit
    return out


def run_twb(project: Path, day: str, env: dict) -> dict:
    "One `twb run daily` in a fresh process: wall, the children's CPU, and the stages."
    c0, launched = children_cpu(), datetime.now(timezone.utc)
    t0 = time.perf_counter()
    twb = [TWB] if 'PYTHONPATH' not in env else [sys.executable, '-c', 'import sys; from trading_workbench.cli import main; sys.exit(main())']
    r = subprocess.run([*twb, '--settings', str(project / 'settings.ini'), 'run', 'daily', '--date', day, '--quiet'],
                       capture_output=True, text=True, env=env, cwd=project)
    wall, ended = time.perf_counter() - t0, datetime.now(timezone.utc)
    if r.returncode: raise SystemExit(f"twb run daily --date {day} failed:\n{r.stderr[-3000:]}")
    nb = Path(r.stdout.split('executed notebook: ')[1].split()[0])
    return dict(wall=wall, cpu=children_cpu() - c0, **papermill_stages(nb, launched, ended))


INPROC = r'''
import json, sys, time
t = {}; t0 = time.perf_counter()
from pathlib import Path
from trading_workbench.core.config import Settings
from trading_workbench.data.manager import DataSourceManager
from trading_workbench.features.builder import TimeSeriesFeatureBuilder
from trading_workbench.ops.daily import daily_bundles, daily_features, closing_prices, market_data, plan_day, replay_clock, daily_orders, make_broker, account_label
from trading_workbench.signals.runner import ModelRunner, default_jobs, start_executor
from trading_workbench.signals.router import FeatureFlags, SignalRouter
from trading_workbench.execution.orders import OrderManager
from trading_workbench.recovery.checkpoints import CheckpointManager
from trading_workbench.store.db import Store
t['interpreter+imports'] = time.perf_counter() - t0; t0 = time.perf_counter()
settings = Settings.load(Path(sys.argv[1]))
ex = start_executor(settings)          # as the notebook does: the workers import the models while the data loads
plan = plan_day(settings, sys.argv[2]); clock = replay_clock(plan.session)
store = Store.from_settings(settings, clock)
store.start_run(plan.run_id, 'daily', {})
t['setup'] = time.perf_counter() - t0; t0 = time.perf_counter()
bars = market_data(DataSourceManager.from_settings(settings, store, clock), plan)
t['data'] = time.perf_counter() - t0; t0 = time.perf_counter()
daily_features(TimeSeriesFeatureBuilder(), store, bars, plan)
t['features (persisted)'] = time.perf_counter() - t0; t0 = time.perf_counter()
runner = ModelRunner.from_settings(settings, ex, default_jobs(settings), clock)
report = runner.run(bars, as_of=clock.now(), run_id=plan.run_id)
ex.shutdown()
t['models'] = time.perf_counter() - t0; t0 = time.perf_counter()
store.save_signals(plan.run_id, report.signals)
t['store: signals'] = time.perf_counter() - t0; t0 = time.perf_counter()
bundles = daily_bundles(SignalRouter(FeatureFlags.from_settings(settings, store, clock), clock), report)
manager = OrderManager(make_broker(settings, store, clock), store, settings, clock, CheckpointManager(store), account_name=account_label(settings))
daily_orders(manager, bundles, closing_prices(bars, plan), plan)
t['router+orders'] = time.perf_counter() - t0; t0 = time.perf_counter()
store.finish_run(plan.run_id, 'ok', {})
t['store: finish'] = time.perf_counter() - t0
print(json.dumps(t))
'''

def run_inproc(project: Path, day: str, env: dict) -> dict:
    "The same steps in one fresh process, no papermill, no kernel."
    c0, t0 = children_cpu(), time.perf_counter()
    r = subprocess.run([sys.executable, '-c', INPROC, str(project / 'settings.ini'), day], capture_output=True, text=True, env=env, cwd=project)
    wall = time.perf_counter() - t0
    if r.returncode: raise SystemExit(f"in-process run of {day} failed:\n{r.stderr[-3000:]}")
    return dict(wall=wall, cpu=children_cpu() - c0, **json.loads(r.stdout.strip().splitlines()[-1]))


def project(tmp: Path, name: str, rev: str | None = None) -> Path:
    "A scratch project: the repository's settings (revision `rev`'s for old code, which refuses newer keys) with the store and runs/ in `tmp/name`."
    p = tmp / name
    p.mkdir()
    ini = (ROOT / 'settings.ini').read_text() if rev is None else subprocess.run(
        ['git', '-C', str(ROOT), 'show', f'{rev}:settings.ini'], capture_output=True, text=True, check=True).stdout
    (p / 'settings.ini').write_text(ini)
    return p


def env_for(**over) -> dict:
    e = {k: v for k, v in os.environ.items() if not k.startswith('TWB_')}
    return dict(e, TWB_LLM_HOST='http://127.0.0.1:9', **over)     # no LLM server: the four forecasters carry the day


def old_code(tmp: Path, rev: str) -> Path:
    "The package and ops notebooks of git revision `rev`, unpacked under `tmp` (run through PYTHONPATH)."
    out = tmp / f'old-{rev}'
    out.mkdir()
    tar = subprocess.run(['git', '-C', str(ROOT), 'archive', rev, 'trading_workbench', 'nbs/ops'], capture_output=True, check=True).stdout
    subprocess.run(['tar', '-x', '-C', str(out)], input=tar, check=True)
    return out


def main(repeat: int = 1, old: str = '2a12979') -> None:
    import pandas as pd
    print(f"cpus {os.cpu_count()}, load average {os.getloadavg()[0]:.1f} (a shared machine: timings are noisy; compare ratios)")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        cases = {'papermill, now': (run_twb, env_for()),
                 f'papermill, before ({old})': (run_twb, env_for(PYTHONPATH=str(old_code(Path(tmp), old)))),
                 'in-process, no papermill': (run_inproc, env_for())}
        projects = {name: project(Path(tmp), f'p{i}', old if 'before' in name else None) for i, name in enumerate(cases)}
        for name, (fn, env) in cases.items(): fn(projects[name], DAYS[0], env)          # warm-up: the bar cache, the first migration
        for rep in range(repeat):
            for day in DAYS[1:]:
                for name, (fn, env) in cases.items():
                    rows.append(dict(case=name, day=day, **fn(projects[name], day, env)))
    print(f"load average after: {os.getloadavg()[0]:.1f}")
    t = pd.DataFrame(rows).groupby('case', sort=False).median(numeric_only=True).T
    print(t.round(2).astype(object).where(t.notna(), '').to_string())
    now, was, one = cases
    new, before, floor = (t.loc['wall', c] for c in cases)
    print(f"\n25 tickers under papermill: {new:.1f} s wall (aim < 6 s: {'within' if new < 6 else 'OVER'}), "
          f"{t.loc['cpu', now]:.1f} s CPU; before: {before:.1f} s wall ({before / new:.2f}x), "
          f"{t.loc['cpu', was]:.1f} s CPU; the same steps in one process {floor:.1f} s (papermill adds {new - floor:.1f} s)")


def arg(name: str, default: str) -> str: return sys.argv[sys.argv.index(name) + 1] if name in sys.argv else default


if __name__ == '__main__':
    main(int(arg('--repeat', '1')), arg('--old', '2a12979'))
