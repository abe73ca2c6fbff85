"""`twb deploy --to DIR`: a release deployed into a temporary folder; a bad setting, a failing migration and a release
that never gets healthy are each refused or rolled back, by themselves, saying why."""
import socket, sqlite3
from pathlib import Path

import pytest

from trading_workbench.cli import main
from trading_workbench.deploy.release import current, deploy, releases, stop_release
from trading_workbench.store.db import Store

from conftest import ROOT

def free_port() -> int:
    with socket.socket() as s: s.bind(('127.0.0.1', 0)); return s.getsockname()[1]

def settings_file(folder: Path, name='settings.ini', **edits) -> Path:
    text = (ROOT / 'settings.ini').read_text()
    text = text.replace('sources = bundled, csv, yfinance, alpha_vantage, finnhub',
                        'sources = bundled').replace('enable_llm = true', 'enable_llm = false')
    for old, new in edits.items(): text = text.replace(old, new)
    p = folder / name; p.write_text(text)
    return p

@pytest.fixture(scope='module')
def deployed(tmp_path_factory):
    "One healthy release, deployed once for the module (each deploy starts real processes)."
    from trading_workbench.core.config import Settings
    tmp_path = tmp_path_factory.mktemp('deploy')
    ini = settings_file(tmp_path)
    Store.from_settings(Settings.load(ini)).close()
    port = free_port()
    # a loaded machine starts slowly
    res = deploy(tmp_path / 'deploy', ini, ROOT / 'constraints.txt', port=port, probes=120, probe_interval=0.5)
    print(res.text())
    yield tmp_path, ini, res, port
    for r in releases(tmp_path / 'deploy'): stop_release(r, timeout=30)

def test_deploy_then_status_healthy(deployed, capsys):
    tmp_path, ini, res, port = deployed
    assert res.ok and current(tmp_path / 'deploy').release_id == res.release.release_id
    assert [s for s, _, _ in res.steps] == ['install', 'migrate', 'preflight', 'start', 'probe']
    assert main(['--settings', str(ini), 'status']) == 0
    out = capsys.readouterr().out
    assert f'* {res.release.release_id}  running  health: healthy' in out and 'uptime during trading hours' in out

@pytest.mark.parametrize('edit,needle', [
    (('timezone = America/New_York', 'timezone = Mars/Olympus'), 'migrate: twb: [schedule] timezone'),
    (('url = sqlite:///runs/workbench.db', 'url = sqlite:///runs/newer.db'),
     "migrate: twb: database schema '9999' is newer"),
])
def test_broken_release_refused_previous_keeps_running(deployed, edit, needle):
    tmp_path, ini, first, port = deployed
    newer = tmp_path / 'runs' / 'newer.db'
    if not newer.exists():
        Store(f'sqlite:///{newer}').close()
        with sqlite3.connect(newer) as c:
            c.execute("INSERT INTO schema_version VALUES ('9999', 'from the future', '2030-01-01 00:00:00')")
    bad = settings_file(tmp_path, 'bad.ini', **{edit[0]: edit[1]})
    res = deploy(tmp_path / 'deploy', bad, ROOT / 'constraints.txt', port=free_port(), probes=3, probe_interval=0.2)
    print(res.text())
    assert not res.ok and needle in res.release.reason and res.release.status == 'failed'
    assert (
        current(tmp_path / 'deploy').release_id == first.release.release_id
        and res.running.release_id == first.release.release_id
    )


def test_unhealthy_release_rolled_back(deployed):
    tmp_path, ini, first, port = deployed
    with socket.socket() as taken:      # the new release cannot bind its probe port: it never gets healthy
        taken.bind(('127.0.0.1', 0)); taken.listen()
        res = deploy(tmp_path / 'deploy', ini, ROOT / 'constraints.txt', port=taken.getsockname()[1], probes=4,
                     probe_interval=0.5)
    print(res.text())
    assert not res.ok and res.release.status == 'rolled_back' and '4 failed probes' in res.release.reason
    assert f'rolled back to {first.release.release_id}' in res.release.reason
    assert current(tmp_path / 'deploy').release_id == first.release.release_id
    from trading_workbench.deploy.release import probe
    assert probe(port, 120, 0.5)[0]      # the previous release answers again on its own port
