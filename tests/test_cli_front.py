"""The CLI's front: `--help` imports nothing heavy, every sub-command is described, bad arguments cost one line."""
import argparse, subprocess, sys

import pytest

from trading_workbench.cli import main, parser

from conftest import ROOT

INI = str(ROOT / 'settings.ini')

def test_help_imports_nothing_heavy():
    "Importing the CLI and printing its help loads neither pandas nor papermill (a command imports what it needs)."
    code = ("import sys, contextlib, io\nfrom trading_workbench.cli import parser\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n    try: parser().parse_args(['--help'])\n    except "
            "SystemExit: pass\n"
            "print(sorted(m for m in ('pandas', 'papermill', 'numpy', 'sqlalchemy', 'exchange_calendars') if m in "
            "sys.modules))")
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == '[]'

def subcommands(p: argparse.ArgumentParser, prefix=''):
    for a in p._actions:
        if isinstance(a, argparse._SubParsersAction):
            for name, sp in a.choices.items():
                yield prefix + name, sp
                yield from subcommands(sp, prefix + name + ' ')

def test_every_subcommand_described():
    subs = list(subcommands(parser()))
    assert len(subs) >= 12
    for name, sp in subs: assert sp.description, f'twb {name} has no description'

@pytest.mark.parametrize('argv,needle', [
    (['--log-level', 'bogus', 'status'], '--log-level'),
    (['--settings', str(ROOT), 'status'], 'not a folder'),
    (['--settings', str(ROOT / 'no-such.ini'), 'status'], 'an existing settings file'),
    (['--settings', INI, 'run', 'daily', '--date', '1900-01-01'], '--date 1900-01-01: outside the XNYS calendar'),
    (['--settings', INI, 'run', 'daily', '--date', '2018-02-03'], '--date: 2018-02-03 is not an XNYS trading session'),
    (['--settings', INI, 'run', 'daily', '--date', 'tomorrow'], "--date 'tomorrow': expected a date"),
    (['--settings', INI, 'backtest', '--start', '2018-13-01', '--end', '2018-02-01'], '--start'),
    (['--settings', INI, 'session', '--date', '2999-01-01'], 'outside the XNYS calendar'),
])
def test_bad_argument_one_line(argv, needle, capsys):
    try: rc = main(argv)
    except SystemExit as e: rc = e.code   # argparse's own refusals
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and needle in err[-1] and 'Traceback' not in '\n'.join(err)

def test_settings_file_encodings(tmp_path, capsys):
    bom = tmp_path / 'bom.ini'; bom.write_bytes(b'\xef\xbb\xbf' + (ROOT / 'settings.ini').read_bytes())
    latin = tmp_path / 'latin.ini'; latin.write_bytes((ROOT / 'settings.ini').read_bytes() + b'# caf\xe9\n')
    assert main(['--settings', str(latin), 'session', '--date', '2018-02-02']) == 2
    assert 'UTF-8 text' in capsys.readouterr().err
    assert main(['--settings', str(bom), 'session', '--date', '2018-02-02']) == 0
    assert 'open 09:30 ET' in capsys.readouterr().out

def test_unknown_env_and_unconfirmed_live_refused_first(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv('TWB_RISK_MAX_DRAWDOWN', '0.05')
    assert main(['--settings', INI, 'status']) == 2
    assert 'did you mean TWB_RISK_MAX_DRAWDOWN_PCT?' in capsys.readouterr().err
    monkeypatch.delenv('TWB_RISK_MAX_DRAWDOWN')
    monkeypatch.setenv('TWB_BROKER_KIND', 'ibkr'); monkeypatch.setenv('TWB_BROKER_MODE', 'live')
    monkeypatch.setenv('TWB_STORE_URL', f"sqlite:///{tmp_path / 'w.db'}")
    assert main(['--settings', INI, 'run', 'daily', '--date', '2018-02-02']) == 2
    assert 'TWB_LIVE_TRADING=I_UNDERSTAND' in capsys.readouterr().err
    assert not (tmp_path / 'w.db').exists()   # refused before the store was even opened
