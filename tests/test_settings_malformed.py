"""Malformed settings are refused, never silently accepted: free text, environment names, contradictions."""
import string

import pytest
from hypothesis import given, settings as hsettings, strategies as st

from trading_workbench.core.config import (NON_SETTING_ENV, SECRET_ENV, TEXT_CHECKS, Settings, SettingsError, env_key,
                                           known_env_names)

from conftest import ROOT

TEXT = (ROOT / 'settings.ini').read_text()

MALFORMED = [
    ('universe', 'start', 'notadate'), ('universe', 'start', '2018-02-30'), ('universe', 'end', '2010-01-01'),
    ('universe', 'end', '07/02/2018'), ('schedule', 'timezone', 'Mars/Olympus'),
    ('schedule', 'timezone', '../../etc/passwd'),
    ('llm', 'host', 'localhost:11434'), ('llm', 'host', 'http://'), ('llm', 'host', 'http://bad host:1'),
    ('llm', 'host', 'gopher://h'),
    ('data', 'finnhub_base_url', 'finnhub.io/api/v1'), ('data', 'yfinance_base_url', 'https://h:99999'),
    ('broker', 'host', 'ib gateway'), ('broker', 'host', '-bad-'), ('broker', 'host', 'a' * 300),
    ('dashboard', 'host', 'http://x'),
    ('universe', 'tickers', 'AAPL, ../etc'), ('universe', 'tickers', 'AAPL, 📈'), ('universe', 'tickers', 'AAPL, AAPL'),
    ('universe', 'benchmark', '^GS PC'), ('data', 'sources', 'csv, csv'), ('data', 'csv_dir', 'data\x00csv'),
    ('llm', 'model', 'llama 3'), ('execution', 'calendar', 'NY SE'), ('runner', 'dask_scheduler', 'localhost'),
    ('store', 'url', 'sqlite:///runs/work bench.db'), ('broker', 'mode', 'live'),   # kind = paper cannot trade live
]

@pytest.mark.parametrize('sec,key,value', MALFORMED, ids=[f'{s}.{k}={v[:20]!r}' for s, k, v in MALFORMED])
def test_malformed_value_refused(sec, key, value):
    with pytest.raises(SettingsError) as e: Settings.from_text(TEXT, env={env_key(sec, key): value})
    assert e.value.section == sec and e.value.expected

@pytest.mark.parametrize('sec,key,value', MALFORMED[:-1], ids=[f'file:{s}.{k}' for s, k, _ in MALFORMED[:-1]])
def test_malformed_in_file_refused(sec, key, value):
    "The same values written into the file (not the environment) are refused too."
    out, cur = [], None
    for line in TEXT.splitlines():
        if line.startswith('['): cur = line.strip('[]')
        if cur == sec and line.split('=')[0].strip() == key: line = f'{key} = {value}'
        out.append(line)
    with pytest.raises(SettingsError): Settings.from_text('\n'.join(out), env={})

CONTROL = st.characters(min_codepoint=0, max_codepoint=31)

@hsettings(max_examples=150, deadline=None)
@given(key=st.sampled_from(sorted(TEXT_CHECKS)), head=st.text(string.ascii_letters, max_size=5), ctrl=CONTROL,
       tail=st.text(max_size=5))
def test_control_characters_refused_anywhere(key, head, ctrl, tail):
    "Any control character (NUL, newline, escape) in any free-text key is refused."
    with pytest.raises(SettingsError): Settings.from_text(TEXT, env={env_key(*key): head + ctrl + tail})

@hsettings(max_examples=150, deadline=None)
@given(text=st.text(min_size=1, max_size=12).filter(lambda t: t.strip() and not t.strip().isascii()))
def test_non_ascii_host_url_date_timezone_refused(text):
    "Text with non-ASCII characters is never a valid date, host, URL or ticker."
    for sec, key in [('universe', 'start'), ('broker', 'host'), ('llm', 'host'), ('universe', 'benchmark')]:
        with pytest.raises(SettingsError): Settings.from_text(TEXT, env={env_key(sec, key): text})

@hsettings(max_examples=200, deadline=None)
@given(name=st.text(string.ascii_uppercase + string.digits + '_', min_size=1, max_size=30))
def test_unknown_twb_variable_refused(name):
    "A TWB_* name that is neither a setting, a secret, nor a listed non-setting is refused, by name."
    var = 'TWB_' + name
    if var in known_env_names() or var.startswith('TWB_TEST_'): return   # known: covered by the override tests
    with pytest.raises(SettingsError) as e: Settings.from_text(TEXT, env={var: '1'})
    assert e.value.key == var and 'a known TWB_* variable' in str(e.value)

@pytest.mark.parametrize('typo,near',
                         [('TWB_RISK_MAX_DRAWDOWN', 'TWB_RISK_MAX_DRAWDOWN_PCT'),
                          ('TWB_BROKER_PROT', 'TWB_BROKER_PORT'),
                                       ('TWB_FINNHUB_KEY', 'TWB_FINNHUB_API_KEY'), ('TWB_SETTING', 'TWB_SETTINGS')])
def test_typo_names_the_closest(typo, near):
    with pytest.raises(SettingsError, match=f'did you mean {near}\\?'): Settings.from_text(TEXT, env={typo: 'x'})

def test_known_non_settings_allowed():
    env = {**{v: 'value-1234' for v in SECRET_ENV.values()}, **{k: 'x' for k in NON_SETTING_ENV},
           'TWB_TEST_PG_URL': 'postgresql://x'}
    env['TWB_SETTINGS'] = str(ROOT / 'settings.ini')
    assert Settings.from_text(TEXT, env=env).secrets.ib_account.get() == 'value-1234'
