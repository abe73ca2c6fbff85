"""The daily run end to end: `twb run daily` executes nbs/ops/daily_run.ipynb under papermill on bundled data,
with the LLM stage talking to a local Ollama-protocol server; a re-run of the same day places no duplicate
orders; secrets never reach the executed notebook or the store; `twb demo` replays several days."""
import os, sqlite3, subprocess, sys
from pathlib import Path

import nbformat
import pytest

from conftest import ROOT
from ollama_server import OllamaServer, refused_url

TWB = str(Path(sys.executable).parent / 'twb')
TICKERS = 'AAPL,MSFT,KO,XOM'
SECRETS = {'TWB_FINNHUB_API_KEY': 'fh-test-secret-9f8e7d', 'TWB_IB_ACCOUNT': 'DU-test-secret-1234',
           'TWB_DASHBOARD_TOKEN': 'dash-test-secret-5678'}

@pytest.fixture
def project(tmp_path):
    "A scratch project folder: its settings.ini puts the store and runs/ there."
    (tmp_path / 'settings.ini').write_text((ROOT / 'settings.ini').read_text())
    return tmp_path

def twb(project: Path, *args, **env) -> subprocess.CompletedProcess:
    e = {k: v for k, v in os.environ.items() if not k.startswith('TWB_')}
    e.update(TWB_UNIVERSE_TICKERS=TICKERS, **env)
    return subprocess.run([TWB, '--settings', str(project / 'settings.ini'), *args], capture_output=True, text=True,
                          env=e, cwd=project, timeout=900)

def db(project: Path) -> sqlite3.Connection: return sqlite3.connect(project / 'runs' / 'workbench.db')

def executed(project: Path, day: str) -> list[Path]: return sorted((project / 'runs' / 'daily' / day).glob('*.ipynb'))

def errors_in(nb_path: Path) -> list[str]:
    nb = nbformat.read(nb_path, as_version=4)
    return [o.get('ename', '') for c in nb.cells if c.cell_type == 'code' for o in c.get('outputs', [])
            if o.output_type == 'error']

def test_daily_run_with_llm_then_rerun_places_no_duplicates(project):
    with OllamaServer() as ollama:
        r = twb(project, 'run', 'daily', '--date', '2018-02-06', '--quiet', TWB_LLM_HOST=ollama.url, **SECRETS)
        assert r.returncode == 0, r.stderr[-3000:]
        [nb] = executed(project, '2018-02-06')
        assert f'executed notebook: {nb}' in r.stdout and errors_in(nb) == []
        with db(project) as c:
            status, = c.execute("select status from runs").fetchone()
            models = {m for m, in c.execute("select distinct model from signals")}
            n_orders, = c.execute("select count(*) from orders").fetchone()
            n_fills, = c.execute("select count(*) from fills").fetchone()
        assert status == 'ok'
        assert models == {'samossa', 'sarimax', 'garch', 'mssa_rl', 'llm'}   # the LLM stage spoke to the server
        assert len(ollama.state.requests) >= 4
        assert n_orders >= 1 and n_fills >= 1

        again = twb(project, 'run', 'daily', '--date', '2018-02-06', '--quiet', TWB_LLM_HOST=ollama.url, **SECRETS)
        assert again.returncode == 0, again.stderr[-3000:]
    assert len(executed(project, '2018-02-06')) == 2
    with db(project) as c:
        assert c.execute("select count(*) from orders").fetchone()[0] == n_orders
        assert c.execute("select count(*) from fills").fetchone()[0] == n_fills
        # replay clocks stamp both runs alike
        rerun_id = Path(again.stdout.split('executed notebook: ')[1].split()[0]).stem
        rerun = c.execute("select report from runs where run_id = ?", (rerun_id,)).fetchone()[0]
    assert '"DUPLICATE"' in rerun and '"COMPLETE"' not in rerun

    # secrets were in the environment of both runs: none reached a notebook, the log or the store
    blobs = [p.read_bytes()
             for p in executed(project, '2018-02-06')] + [(project / 'runs' / 'workbench.db').read_bytes(),
                                                                        r.stderr.encode(), again.stderr.encode()]
    for s in SECRETS.values():
        assert not any(s.encode() in b for b in blobs), f'{s} leaked'

def test_llm_down_is_reported_and_run_goes_on(project):
    # an operator's run-time toggle, obeyed by the next run
    flags = twb(project, 'flags', 'enable_garch', 'off')
    assert flags.returncode == 0 and 'enable_garch     off' in flags.stdout
    r = twb(project, 'run', 'daily', '--date', '2018-02-07', '--quiet', '--dry-run', TWB_LLM_HOST=refused_url())
    assert r.returncode == 0, r.stderr[-3000:]
    [nb] = executed(project, '2018-02-07')
    assert errors_in(nb) == []
    with db(project) as c:
        report, = c.execute("select report from runs").fetchone()
        assert c.execute("select count(*) from orders").fetchone()[0] == 0          # a dry run places nothing
        assert c.execute("select count(*) from signals where model = 'llm'").fetchone()[0] == 0
        assert {m for m, in c.execute("select distinct model from signals")} == {'samossa', 'sarimax', 'mssa_rl'}
        alerts = [m for m, in c.execute("select message from alerts where source = 'model.llm'")]
    assert '"llm": "LLMUnavailable' in report and '"dry_run": true' in report
    assert alerts and 'unavailable' in alerts[0]

def test_bad_date_is_a_clear_error(project):
    r = twb(project, 'run', 'daily', '--date', '2018-02-10', '--quiet')
    assert r.returncode == 2 and '2018-02-10 is not an XNYS trading session' in r.stderr

def test_halt_blocks_orders(project):
    assert twb(project, 'halt', 'test halt').returncode == 0
    r = twb(project, 'run', 'daily', '--date', '2018-02-07', '--quiet', TWB_LLM_HOST=refused_url())
    assert r.returncode == 0, r.stderr[-3000:]
    with db(project) as c:
        assert c.execute("select count(*) from fills").fetchone()[0] == 0
        n_new, = c.execute("select count(*) from orders where side = 'BUY' and state != 'rejected'").fetchone()
        status, report = c.execute("select status, report from runs").fetchone()
    # HALTED: the day sends only its SELL signals (exits), so nothing is bought; the run records the state
    assert n_new == 0 and '"trading_state": "HALTED"' in report

def test_demo_replays_days(project):
    r = twb(project, 'demo', '--days', '2', '--quiet', TWB_LLM_HOST=refused_url())
    assert r.returncode == 0, r.stderr[-3000:]
    assert 'executed notebooks:' in r.stdout and 'account PAPER: equity' in r.stdout and 'trading_state' in r.stdout
    assert [len(executed(project, d)) for d in ('2018-02-06', '2018-02-07')] == [1, 1]
    with db(project) as c:
        # 02-06 then 02-07
        assert [s for s, in c.execute("select status from runs order by started_at")] == ['ok', 'ok']
        assert c.execute("select count(*) from equity").fetchone()[0] >= 2
