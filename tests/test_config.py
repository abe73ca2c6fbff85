"""Settings: every key's environment override, every validation error, secrets never shown."""
import dataclasses, io, logging, pickle, re
from typing import Literal, get_args, get_origin, get_type_hints

import pytest

from trading_workbench.core.config import (SECRET_ENV, SECTIONS, Secret, Settings, SettingsError, env_key)
from trading_workbench.core.log import get_logger, setup_logging

from conftest import ROOT

TEXT = (ROOT / 'settings.ini').read_text()
BASE = Settings.from_text(TEXT, env={})

SPECIAL = {('data', 'sources'): ('csv, bundled', ('csv', 'bundled')),
           ('universe', 'tickers'): ('IBM,KO', ('IBM', 'KO')),
           ('store', 'url'): ('sqlite:////tmp/other.db', 'sqlite:////tmp/other.db'),
           ('schedule', 'daily_run_time'): ('09:15', '09:15'),
           # free text is checked: the alternative must be well formed too
           **{('data', k): ('https://mirror.example.com/v2',) * 2
              for k in ('yfinance_base_url', 'alpha_vantage_base_url', 'finnhub_base_url')},
           ('universe', 'benchmark'): ('SPY', 'SPY'), ('universe', 'start'): ('2014-01-02', '2014-01-02'),
           ('universe', 'end'): ('2019-01-02', '2019-01-02'), ('broker', 'host'): ('ib-gateway', 'ib-gateway'),
           ('dashboard', 'host'): ('0.0.0.0', '0.0.0.0'),
           ('llm', 'host'): ('http://ollama:11434', 'http://ollama:11434'),
           ('llm', 'model'): ('qwen2.5:7b', 'qwen2.5:7b'), ('schedule', 'timezone'): ('Europe/London', 'Europe/London'),
           ('execution', 'calendar'): ('XLON', 'XLON'),
           ('runner', 'dask_scheduler'): ('tcp://127.0.0.1:8786', 'tcp://127.0.0.1:8786')}

def all_fields():
    for sec, cls in SECTIONS.items():
        hints = get_type_hints(cls)
        for f in dataclasses.fields(cls): yield sec, f, hints[f.name]

def alternative(sec, f, tp):
    "A valid value for the field that differs from the project's settings.ini, as (text, parsed)."
    if (sec, f.name) in SPECIAL: return SPECIAL[(sec, f.name)]
    cur = getattr(getattr(BASE, sec), f.name)
    if tp is bool: return (str(not cur).lower(), not cur)
    if get_origin(tp) is Literal: v = next(c for c in get_args(tp) if c != cur); return (v, v)
    if tp == tuple[str, ...]: return ('a,b', ('a', 'b'))
    if tp is str: return ('other-value', 'other-value')
    m = f.metadata
    lo = m.get('ge') if m.get('ge') is not None else m.get('gt')
    hi = m.get('le') if m.get('le') is not None else m.get('lt')
    if tp is int:
        cand = [c for c in (cur + 1, cur - 1) if (m.get('ge') is None or c >= m['ge'])
                and (m.get('le') is None or c <= m['le'])]
        return (str(cand[0]), cand[0])
    v = (lo + hi) / 2 if lo is not None and hi is not None else (cur * 1.5 if cur else 1.0)
    if v == cur: v = (v + (hi if hi is not None else v * 2)) / 2
    return (repr(float(v)), float(v))

FIELDS = list(all_fields())

@pytest.mark.parametrize('sec,f,tp', FIELDS, ids=[f'{s}.{f.name}' for s, f, _ in FIELDS])
def test_every_key_overridable(sec, f, tp):
    text, parsed = alternative(sec, f, tp)
    # the paper broker never trades live
    extra = {'TWB_BROKER_KIND': 'ibkr'} if (sec, f.name) == ('broker', 'mode') else {}
    cfg = Settings.from_text(TEXT, env={env_key(sec, f.name): text, **extra})
    assert getattr(getattr(cfg, sec), f.name) == parsed
    assert getattr(getattr(cfg, sec), f.name) != getattr(getattr(BASE, sec), f.name)

def without_key(sec, key):
    "settings.ini text with `[sec] key` removed."
    out, cur = [], None
    for line in TEXT.splitlines():
        m = re.match(r'\[(\w+)\]', line)
        if m: cur = m.group(1)
        if cur == sec and re.match(rf'{key}\s*=', line): continue
        out.append(line)
    return '\n'.join(out)

REQUIRED = [(s, f) for s, f, _ in FIELDS if f.default is dataclasses.MISSING
            and f.default_factory is dataclasses.MISSING]

@pytest.mark.parametrize('sec,f', REQUIRED, ids=[f'{s}.{f.name}' for s, f in REQUIRED])
def test_missing_required_key(sec, f):
    with pytest.raises(SettingsError) as e: Settings.from_text(without_key(sec, f.name), env={})
    assert (e.value.section, e.value.key, e.value.value) == (sec, f.name, None)
    assert f'[{sec}] {f.name} = <missing>' in str(e.value) and 'required' in str(e.value)

def bad_values(tp, meta):
    "Texts the field must refuse."
    if tp is bool: return ['maybe']
    if get_origin(tp) is Literal: return ['bogus']
    if tp in (tuple[str, ...], str): return []
    out = ['abc', 'nan'] + (['1.5'] if tp is int else [])
    if meta.get('ge') is not None: out.append(str(meta['ge'] - 1))
    if meta.get('gt') is not None: out.append(str(meta['gt']))
    if meta.get('le') is not None: out.append(str(meta['le'] + 1))
    if meta.get('lt') is not None: out.append(str(meta['lt']))
    return out

BAD = [(s, f, v) for s, f, tp in FIELDS for v in bad_values(tp, f.metadata)]

@pytest.mark.parametrize('sec,f,value', BAD, ids=[f'{s}.{f.name}={v}' for s, f, v in BAD])
def test_bad_value_named(sec, f, value):
    with pytest.raises(SettingsError) as e: Settings.from_text(TEXT, env={env_key(sec, f.name): value})
    err = e.value
    assert (err.section, err.key, err.value) == (sec, f.name, value)
    assert err.expected and f'env {env_key(sec, f.name)}' in str(err)

@pytest.mark.parametrize('edit,needle', [
    (lambda t: t + '\n[bogus]\nx = 1\n', 'a known section'),
    (lambda t: t.replace('[risk]', '[risk]\nmax_positon_pct = 0.1'), 'one of the known keys'),
    (lambda t: t.replace('[broker]', '[broker]\napi_key = abc'), 'no secrets'),
    (lambda t: t.replace('[broker]', '[broker]\naccount = DU123'), 'no secrets'),
    (lambda t: t.replace('sources = bundled,', 'sources = bundled, bloomberg,'), 'known sources'),
    (lambda t: t.replace('daily_run_time = 16:30', 'daily_run_time = 25:00'), 'a time HH:MM'),
    (lambda t: t.replace('url = sqlite:///runs/workbench.db', 'url = runs/workbench.db'), 'an SQLAlchemy URL'),
    (lambda t: t.replace('[store]', 'store]'), 'valid ini syntax'),
])
def test_cross_and_file_errors(edit, needle):
    with pytest.raises(SettingsError, match=re.escape(needle)): Settings.from_text(edit(TEXT), env={})

def test_live_needs_confirmation():
    assert not Settings.from_text(TEXT, env={'TWB_BROKER_KIND': 'ibkr', 'TWB_BROKER_MODE': 'live'}).live_confirmed
    assert Settings.from_text(TEXT,
                              env={'TWB_BROKER_KIND': 'ibkr', 'TWB_BROKER_MODE': 'live',
                                   'TWB_LIVE_TRADING': 'I_UNDERSTAND'}).live_confirmed

def test_relative_sqlite_resolved_against_settings_folder(tmp_path):
    p = tmp_path / 'settings.ini'; p.write_text(TEXT)
    assert Settings.load(p, env={}).store.url == f"sqlite:///{tmp_path / 'runs' / 'workbench.db'}"

def test_find_settings_errors(tmp_path):
    with pytest.raises(SettingsError,
                       match='an existing settings file'): Settings.load(env={'TWB_SETTINGS': str(tmp_path / 'no.ini')})

SECRET_VALUES = {v: f'secret-{i}-value-xyz' for i, v in enumerate(SECRET_ENV.values())}

def test_secrets_never_in_repr_or_logs():
    cfg = Settings.from_text(TEXT, env=SECRET_VALUES)
    assert cfg.secrets.finnhub_key.get() == SECRET_VALUES['TWB_FINNHUB_API_KEY']
    buf = io.StringIO()
    setup_logging('DEBUG', stream=buf)
    log = get_logger('test.secrets')
    log.info('settings: %r', cfg)
    log.info('secrets: %s', cfg.secrets)
    log.warning('a careless message with the raw key %s', cfg.secrets.alpha_vantage_key.get())
    try: raise RuntimeError(f"vendor said no to {cfg.secrets.ib_account.get()}")
    except RuntimeError: log.exception('failure')
    shown = repr(cfg) + str(cfg) + buf.getvalue()
    for v in SECRET_VALUES.values(): assert v not in shown
    assert '***' in buf.getvalue()

def test_secret_not_picklable_nor_in_settings_error():
    with pytest.raises(TypeError): pickle.dumps(Secret('abcd-1234'))
    with pytest.raises(SettingsError) as e: Settings.from_text(TEXT.replace('[llm]',
                                                                            '[llm]\ntoken = supersecret-token'), env={})
    assert 'supersecret-token' not in str(e.value)

def test_settings_logging_uses_run_id():
    from trading_workbench.core.log import run_context
    buf = io.StringIO(); setup_logging('INFO', stream=buf)
    with run_context('daily-x1'): get_logger('t').info('hello')
    assert 'run=daily-x1' in buf.getvalue()
    logging.getLogger('trading_workbench').handlers.clear()
