"""The risk monitor (`twb risk watch`), daily runs and `twb status`, all at once on one SQLite store for about a minute:
no process sees a lock error, every command succeeds, and the monitor keeps checking (and heartbeating) throughout."""
import os, signal, sqlite3, subprocess, sys, threading, time
from pathlib import Path

from conftest import ROOT
from ollama_server import refused_url

TWB = str(Path(sys.executable).parent / 'twb')
SECONDS = 60


def env():
    e = {k: v for k, v in os.environ.items() if not k.startswith('TWB_')}
    e.update(TWB_UNIVERSE_TICKERS='AAPL,MSFT,KO', TWB_LLM_HOST=refused_url(), TWB_RUNNER_EXECUTOR='threads')
    return e


def test_monitor_daily_run_and_status_share_sqlite_without_lock_errors(tmp_path):
    (tmp_path / 'settings.ini').write_text((ROOT / 'settings.ini').read_text())
    base = [TWB, '--settings', str(tmp_path / 'settings.ini')]
    outputs, codes = [], []
    # Ctrl-C's default in the monitor: a job started in the background (`cmd &`) inherits SIGINT ignored
    watch = subprocess.Popen(base + ['risk', 'watch', '--interval', '0.2'], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=env(), cwd=tmp_path,
                             preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    end = time.monotonic() + SECONDS

    def daily_runs():
        # the bundled bars end on 2018-02-07
        for day in ('2018-02-01', '2018-02-02', '2018-02-05', '2018-02-06', '2018-02-07'):
            if time.monotonic() > end - 30: break   # a daily run takes 7-30 s here: keep the test near a minute
            r = subprocess.run(base + ['run', 'daily', '--date', day, '--quiet'], capture_output=True, text=True,
                               env=env(), cwd=tmp_path, timeout=300)
            outputs.append(('daily ' + day, r.stdout + r.stderr)); codes.append(('daily ' + day, r.returncode))
    runner = threading.Thread(target=daily_runs)
    runner.start()
    n_status = 0
    while time.monotonic() < end or runner.is_alive() or n_status < 5:   # on a loaded machine each call is slower
        r = subprocess.run(base + ['status'], capture_output=True, text=True, env=env(), cwd=tmp_path, timeout=120)
        outputs.append(('status', r.stdout + r.stderr)); codes.append(('status', r.returncode)); n_status += 1
    runner.join()
    watch.send_signal(signal.SIGINT)
    try: out, err = watch.communicate(timeout=120)   # a loaded machine may be slow to finish the check in progress
    except subprocess.TimeoutExpired:
        watch.kill(); out, err = watch.communicate()
        raise AssertionError(f'the monitor did not stop within 120 s of SIGINT: {(out + err)[-3000:]}') from None
    outputs.append(('watch', out + err)); codes.append(('watch', watch.returncode))
    for name, text in outputs:
        assert 'database is locked' not in text and 'OperationalError' not in text, (name, text[-2000:])
    assert all(c == 0 for _, c in codes), [(n, c) for n, c in codes if c != 0]
    assert sum(1 for n, _ in codes if n.startswith('daily')) >= 1 and n_status >= 5
    checks = [line for line in out.splitlines() if ' equity ' in line]
    assert len(checks) >= 20, out[-2000:]
    with sqlite3.connect(tmp_path / 'runs' / 'workbench.db') as c:
        assert c.execute("select count(*) from heartbeats where component = 'risk_monitor'").fetchone()[0] == 1
        assert {s for s, in c.execute("select status from runs where kind = 'daily'")} <= {'ok', 'partial'}
        assert c.execute("select count(*) from positions").fetchone()[0] >= 1     # the monitor had a book to watch
