"""The daily run's wall time, stage by stage: `twb run daily` on the 25-ticker universe under papermill (the aim is
under 6 s), beside two baselines measured in the same run: the same steps called in one process without papermill
(the floor papermill adds to), and the code before this work (`--old REV`, default 2a12979: the notebook saved around
every cell, a graceful kernel stop, the model pool started when the models start), unpacked
from git and run the same way.

Stages of a papermill run, from the clocks it leaves behind: the launch time taken here, papermill's start, each
cell's start and end (the executed notebook's metadata) and the process's exit:
- interpreter+imports: `twb` starting, importing, reading settings and the store, up to papermill's start;
- kernel start: papermill reading the notebook, starting the kernel, up to the first cell;
- the cells, grouped: setup (the kernel's imports, settings, store, the run's record), data+features, models+signals,
  router+orders, risk and the rest;
- notebook save: the time between cells (papermill wrote the notebook there) and after the last one (the final write,
  the kernel's stop, twb printing the run and exiting).
The in-process baseline times the same steps one by one, store writes apart.

CPU is the children's user+system time (`resource.getrusage(RUSAGE_CHILDREN)`): twb, its kernel, the pool's fork server
and workers (this process makes itself their subreaper, so the fork server, orphaned when
the kernel is killed, is reaped
here with its workers' time). Per stage, CPU comes from the kernel's process tree (/proc), read before and after each
cell by an IPython startup file (a scratch IPYTHONDIR): `cpu <stage>` rows; `cpu twb+kernel start+save` is the rest.
The machine may be shared (the load average is printed): compare the ratios within one run.
Run: .venv/bin/python benchmarks/daily.py [--repeat N] [--old REV]
"""
from __future__ import annotations
import json, os, resource, subprocess, sys, tempfile, time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TWB = str(Path(sys.executable).parent / 'twb')
# one warm-up day (fills the store's bar cache), then timed days
DAYS = ('2018-02-05', '2018-02-06', '2018-02-07')
STAGES = ('interpreter+imports', 'kernel start', 'setup cell', 'data+features', 'models+signals', 'router+orders',
          'risk+summary', 'notebook save')
CELL_STAGE = (('market_data(', 'data+features'), ('daily_signals(', 'models+signals'),
              ('daily_bundles(', 'router+orders'), ('daily_orders(', 'router+orders'),
              ('risk_before_orders', 'router+orders'), ('Settings.load', 'setup cell'), ('start_run(', 'setup cell'))


def children_cpu() -> float:
    "CPU seconds of every reaped descendant; orphans (the pool's fork server) are reaped first."
    reap_orphans()
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def become_subreaper() -> None:
    "Orphaned descendants (the model pool's fork server) become this process's children, so their CPU is counted."
    import ctypes
    ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)      # PR_SET_CHILD_SUBREAPER


def reap_orphans(wait_s: float = 10.0) -> None:
    "Wait (up to `wait_s`) for orphans adopted as subreaper to exit, and reap them."
    end = time.monotonic() + wait_s
    while time.monotonic() < end:
        try: pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError: return
        if pid == 0: time.sleep(0.05)


TREE_CPU = r'''
import os
def tree_cpu(root: int = os.getpid()) -> float:
    "CPU seconds of `root` and its live descendants, with the children they reaped."
    procs, tick = {}, os.sysconf('SC_CLK_TCK')
    for d in os.listdir('/proc'):
        if not d.isdigit(): continue
        try: f = open(f'/proc/{d}/stat').read().rsplit(')', 1)[1].split()
        except OSError: continue
        procs[int(d)] = (int(f[1]), sum(int(x) for x in f[11:15]) / tick)      # ppid; utime+stime+cutime+cstime
    tree, todo = set(), [root]
    while todo:
        p = todo.pop(); tree.add(p); todo += [c for c, (pp, _) in procs.items() if pp == p and c not in tree]
    return sum(procs[p][1] for p in tree if p in procs)
'''

STARTUP = (
    TREE_CPU
    + r'''
import json
_log, _t0 = os.environ['BENCH_CPU_LOG'], {}
def _pre(info): _t0['cpu'] = tree_cpu()
def _post(result):
    row = dict(cell=result.info.raw_cell, before=_t0.get('cpu'), after=tree_cpu())
    with open(_log, 'a') as f: f.write(json.dumps(row) + '\n')
get_ipython().events.register('pre_run_cell', _pre)
get_ipython().events.register('post_run_cell', _post)
'''
)


def ipython_dir(tmp: Path) -> Path:
    "A scratch IPYTHONDIR whose startup file logs each cell's CPU (the kernel's process tree) to $BENCH_CPU_LOG."
    d = tmp / 'ipython'
    (d / 'profile_default' / 'startup').mkdir(parents=True, exist_ok=True)
    (d / 'profile_default' / 'startup' / '00-cpu.py').write_text(STARTUP)
    return d


NOT_STEPS = ('# Parameters', 'run_date =', 'import sys; sys.modules')     # papermill's and the kernel's own cells


def cpu_stages(log: Path, total: float) -> dict:
    """CPU seconds per stage from the kernel's cell log; the rest of `total` is twb's process,
    the kernel's start and stop."""
    out = {f'cpu {s}': 0.0 for s in STAGES[2:-1]}
    rows = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    for r in rows:
        if r['before'] is not None and not r['cell'].startswith(NOT_STEPS):
            out[f'cpu {stage_of(r["cell"])}'] += r['after'] - r['before']
    out['cpu twb+kernel start+save'] = total - sum(out.values())
    return out


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
    "One `twb run daily` in a fresh process: wall, the children's CPU, and the stages (wall and CPU)."
    log = project / f'cpu-{day}.jsonl'
    log.unlink(missing_ok=True)             # a repeated day starts a fresh log
    env = dict(env, IPYTHONDIR=str(ipython_dir(project)), BENCH_CPU_LOG=str(log))
    c0, launched = children_cpu(), datetime.now(timezone.utc)
    t0 = time.perf_counter()
    twb = [TWB] if 'PYTHONPATH' not in env else [sys.executable, '-c',
                                                 'import sys; from trading_workbench.cli import main; sys.exit(main())']
    r = subprocess.run([*twb, '--settings', str(project / 'settings.ini'), 'run', 'daily', '--date', day, '--quiet'],
                       capture_output=True, text=True, env=env, cwd=project)
    wall, ended = time.perf_counter() - t0, datetime.now(timezone.utc)
    if r.returncode: raise SystemExit(f"twb run daily --date {day} failed:\n{r.stderr[-3000:]}")
    nb = Path(r.stdout.split('executed notebook: ')[1].split()[0])
    cpu = children_cpu() - c0
    return dict(wall=wall, cpu=cpu, **papermill_stages(nb, launched, ended), **cpu_stages(log, cpu))


INPROC = (
    TREE_CPU
    + r'''
import json, sys, time
t = {}; t0, c0 = time.perf_counter(), tree_cpu()
def mark(step):
    "Wall and CPU (this process and its pool) since the last mark."
    global t0, c0
    t[step], t[f'cpu {step}'] = time.perf_counter() - t0, tree_cpu() - c0
    t0, c0 = time.perf_counter(), tree_cpu()
from pathlib import Path
from trading_workbench.core.config import Settings
from trading_workbench.data.manager import DataSourceManager
from trading_workbench.features.builder import TimeSeriesFeatureBuilder
from trading_workbench.ops.daily import (daily_bundles, daily_features, closing_prices, market_data, plan_day,
                                        replay_clock, daily_orders, make_broker, account_label)
from trading_workbench.signals.runner import ModelRunner, default_jobs, start_executor
from trading_workbench.signals.router import FeatureFlags, SignalRouter
from trading_workbench.execution.orders import OrderManager
from trading_workbench.recovery.checkpoints import CheckpointManager
from trading_workbench.store.db import Store
mark('interpreter+imports')
settings = Settings.load(Path(sys.argv[1]))
ex = start_executor(settings)          # as the notebook does: the workers import the models while the data loads
plan = plan_day(settings, sys.argv[2]); clock = replay_clock(plan.session)
store = Store.from_settings(settings, clock)
store.start_run(plan.run_id, 'daily', {})
mark('setup')
bars = market_data(DataSourceManager.from_settings(settings, store, clock), plan)
mark('data')
daily_features(TimeSeriesFeatureBuilder(), store, bars, plan)
mark('features (persisted)')
runner = ModelRunner.from_settings(settings, ex, default_jobs(settings), clock)
report = runner.run(bars, as_of=clock.now(), run_id=plan.run_id)
ex.shutdown()
mark('models')
store.save_signals(plan.run_id, report.signals)
mark('store: signals')
bundles = daily_bundles(SignalRouter(FeatureFlags.from_settings(settings, store, clock), clock), report)
manager = OrderManager(make_broker(settings, store, clock), store, settings, clock, CheckpointManager(store),
                       account_name=account_label(settings))
daily_orders(manager, bundles, closing_prices(bars, plan), plan)
mark('router+orders')
store.finish_run(plan.run_id, 'ok', {})
mark('store: finish')
print(json.dumps(t))
'''
)

def run_inproc(project: Path, day: str, env: dict) -> dict:
    "The same steps in one fresh process, no papermill, no kernel."
    c0, t0 = children_cpu(), time.perf_counter()
    r = subprocess.run([sys.executable, '-c', INPROC, str(project / 'settings.ini'), day], capture_output=True,
                       text=True, env=env, cwd=project)
    wall = time.perf_counter() - t0
    if r.returncode: raise SystemExit(f"in-process run of {day} failed:\n{r.stderr[-3000:]}")
    return dict(wall=wall, cpu=children_cpu() - c0, **json.loads(r.stdout.strip().splitlines()[-1]))


def project(tmp: Path, name: str, rev: str | None = None) -> Path:
    """A scratch project: the repository's settings (revision `rev`'s for old code, which refuses newer keys) with the
    store and runs/ in `tmp/name`."""
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
    tar = subprocess.run(['git', '-C', str(ROOT), 'archive', rev, 'trading_workbench', 'nbs/ops'], capture_output=True,
                         check=True).stdout
    subprocess.run(['tar', '-x', '-C', str(out)], input=tar, check=True)
    return out


def main(repeat: int = 1, old: str = '2a12979') -> None:
    "Run every case on the timed days; print the stages (wall, then CPU) side by side. `--old none`: skip the old code."
    import pandas as pd
    print(f"cpus {os.cpu_count()}, load average {os.getloadavg()[0]:.1f} (a shared machine: timings are noisy; compare "
          f"ratios)")
    rows = []
    become_subreaper()
    with tempfile.TemporaryDirectory() as tmp:
        cases = {'papermill, now': (run_twb, env_for()),
                 f'papermill, before ({old})': (run_twb, env_for(PYTHONPATH=str(old_code(Path(tmp), old))))
                 if old != 'none' else None, 'in-process, no papermill': (run_inproc, env_for())}
        cases = {k: v for k, v in cases.items() if v}
        projects = {name: project(Path(tmp), f'p{i}', old if 'before' in name else None) for i,
                    name in enumerate(cases)}
        # warm-up: the bar cache, the first migration
        for name, (fn, env) in cases.items(): fn(projects[name], DAYS[0], env)
        for rep in range(repeat):
            for day in DAYS[1:]:
                for name, (fn, env) in cases.items():
                    rows.append(dict(case=name, day=day, **fn(projects[name], day, env)))
    print(f"load average after: {os.getloadavg()[0]:.1f}")
    t = pd.DataFrame(rows).groupby('case', sort=False).median(numeric_only=True).T
    print(t.round(2).astype(object).where(t.notna(), '').to_string())
    now, *_, one = cases
    new, floor = t.loc['wall', now], t.loc['wall', one]
    was = next((c for c in cases if 'before' in c), None)
    print(f"\n25 tickers under papermill: {new:.1f} s wall (aim < 6 s: {'within' if new < 6 else 'OVER'}), "
          f"{t.loc['cpu', now]:.1f} s CPU; " + (f"before: {t.loc['wall', was]:.1f} s wall "
                                                f"({t.loc['wall', was] / new:.2f}x), "
          f"{t.loc['cpu', was]:.1f} s CPU ({t.loc['cpu', was] / t.loc['cpu', now]:.2f}x); " if was else '') +
          f"the same steps in one process {floor:.1f} s (papermill adds {new - floor:.1f} s)")


def arg(name: str, default: str) -> str: return sys.argv[sys.argv.index(name) + 1] if name in sys.argv else default


if __name__ == '__main__':
    main(int(arg('--repeat', '1')), arg('--old', '2a12979'))
