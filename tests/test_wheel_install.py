"""The workbench runs from an installed wheel, outside its checkout: the ops notebooks ship as package data,
and plain papermill runs them (their kernel name is kept)."""
import json, os, shutil, subprocess, sys, sysconfig, venv
from pathlib import Path

import pytest

from trading_workbench.cli import OPS_DIR

from conftest import ROOT

def test_ops_notebooks_keep_their_kernel_name():
    for nb in sorted((ROOT / 'nbs' / 'ops').glob('*.ipynb')):
        assert json.loads(nb.read_text())['metadata']['kernelspec']['name'] == 'python3', nb.name
    assert sorted(p.name for p in OPS_DIR.glob('*.ipynb')) == sorted(p.name
                                                                     for p in (ROOT / 'nbs' / 'ops').glob('*.ipynb'))

@pytest.fixture(scope='module')
def wheel_venv(tmp_path_factory):
    "A fresh venv with the project's wheel installed (no deps); the dependencies come from this venv's site-packages."
    tmp = tmp_path_factory.mktemp('wheel')
    subprocess.run([sys.executable, '-m', 'pip', 'wheel', '--no-deps', '-q', '-w', str(tmp / 'dist'), str(ROOT)],
                   check=True, capture_output=True)
    whl = next((tmp / 'dist').glob('trading_workbench-*.whl'))
    env_dir = tmp / 'venv'
    # its own pip (bundled, offline): never this venv's, which would uninstall ours
    venv.EnvBuilder(with_pip=True).create(env_dir)
    py = env_dir / 'bin' / 'python'
    # before it sees our packages
    subprocess.run([py, '-m', 'pip', 'install', '--no-deps', '--no-index', '-q', str(whl)], check=True)
    site = subprocess.run([py, '-c', 'import sysconfig; print(sysconfig.get_paths()["purelib"])'], capture_output=True,
                          text=True, check=True).stdout.strip()
    # a path line: its .pth hooks do not run
    (Path(site) / 'deps-from-dev-venv.pth').write_text(sysconfig.get_paths()['purelib'] + '\n')
    return env_dir, Path(site)

def test_daily_run_from_the_wheel(wheel_venv, tmp_path):
    env_dir, site = wheel_venv
    py, twb = env_dir / 'bin' / 'python', env_dir / 'bin' / 'twb'
    where = subprocess.run([py, '-c', 'import trading_workbench.cli as c; print(c.__file__); print(c.OPS_DIR)'],
                           cwd=tmp_path, capture_output=True, text=True, check=True).stdout.split()
    assert where[0].startswith(str(site)) and where[1].startswith(str(site))   # the wheel, not the checkout
    shutil.copy(ROOT / 'settings.ini', tmp_path / 'settings.ini')
    env = {k: v for k, v in os.environ.items() if not k.startswith('TWB_')}
    env.update(PATH=f"{env_dir / 'bin'}:{os.environ['PATH']}", TWB_DATA_SOURCES='bundled')
    r = subprocess.run([twb, 'run', 'daily', '--date', '2018-02-07', '--tickers', 'AAPL,MSFT', '--quiet'], cwd=tmp_path,
                       env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert 'ok' in r.stdout and (tmp_path / 'runs' / 'workbench.db').exists()
    # plain papermill on the packaged notebook: no -k, the notebook names its kernel
    out = tmp_path / 'plain.ipynb'
    r = subprocess.run([py, '-m', 'papermill', str(site / 'trading_workbench' / 'ops_notebooks' / 'daily_run.ipynb'),
                        str(out),
                        '-p', 'run_date', '2018-02-06', '-p', 'tickers', 'AAPL', '-p', 'dry_run', 'True',
                        '--no-progress-bar'],
                       cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert json.loads(out.read_text())['metadata']['kernelspec']['name'] == 'python3'
