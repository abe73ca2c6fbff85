"""Every quality rule on the real dirty files (copied into tests/fixtures/prices), under each policy."""
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from trading_workbench.core.types import BAR_COLUMNS
from trading_workbench.data.quality import RULES, QualityError, QualityPolicy, check_seam, gate, inspect
from trading_workbench.data.sources import BundledSource

FIX = Path(__file__).resolve().parent / 'fixtures' / 'prices'


def fixture(name):
    df = pd.read_csv(FIX / name)
    df.columns = [c.lower().replace(' ', '_') for c in df.columns]
    return df.set_index(pd.DatetimeIndex(pd.to_datetime(df.pop('date')), name='date'))[list(BAR_COLUMNS)]


DHR, SPY, AAPL_RAW = fixture('sp500_5y_DHR.csv'), fixture('mplfinance_SPY.csv'), fixture('raw_unadjusted_AAPL.csv')
MSFT = BundledSource().history('MSFT').astype('float64')


def faulty(rule):
    "A real frame that breaks `rule` (and only it, under the default repairs of earlier rules)."
    if rule == 'missing_columns': return MSFT.drop(columns=['volume'])
    # newest first
    if rule == 'unsorted_dates': return AAPL_RAW[(AAPL_RAW.index >= '2010-01-01') & (AAPL_RAW.index <= '2013-12-31')]
    if rule == 'duplicate_dates': return pd.concat([MSFT.iloc[:100], MSFT.iloc[99:200]])
    if rule == 'nan_prices': return DHR.loc['2015-06-01':'2015-08-31']                 # 2015-07-17 open is NaN
    if rule == 'nonpositive_prices':
        df = MSFT.copy(); df.loc['2016-06-01', ['open', 'high', 'low', 'close']] = 0.0; return df
    if rule == 'ohlc_inconsistent': return SPY.loc['2015-01-01':'2015-12-31']         # opens below the low
    if rule == 'negative_volume':
        df = MSFT.copy(); df.loc['2016-06-01', 'volume'] = -100.0; return df
    if rule == 'gap': return DHR.loc['2015-01-01':'2015-06-30']                       # the March 2015 hole
    if rule == 'split_jump': return AAPL_RAW.sort_index().loc['2014-01-01':'2014-12-31']
    if rule == 'absurd_magnitude':
        df = MSFT.copy(); df.loc['2016-06-01', 'volume'] = 1e308; return df
    if rule == 'spike':
        df = MSFT.copy(); df.loc['2016-06-01', ['open', 'high', 'low', 'close']] *= 37; return df
    raise KeyError(rule)


EXPECTED_DATES = {'missing_columns': None, 'unsorted_dates': '2013-12-30', 'nan_prices': '2015-07-17',
                  'nonpositive_prices': '2016-06-01',
                  'ohlc_inconsistent': '2015-03-05', 'negative_volume': '2016-06-01', 'gap': '2015-03-23',
                  'split_jump': '2014-06-09',
                  'duplicate_dates': str(MSFT.index[99].date()), 'absurd_magnitude': '2016-06-01',
                  'spike': '2016-06-01'}


@pytest.mark.parametrize('rule', RULES)
@pytest.mark.parametrize('action', ['reject', 'repair', 'warn'])
def test_each_rule_each_policy(rule, action):
    pol = QualityPolicy().with_actions(**{rule: action})
    df = faulty(rule)
    rep = inspect(df, 'T', pol)
    mine = [v for v in rep.violations if v.rule == rule]
    assert mine, f'{rule} not detected'
    assert all(v.ticker == 'T' for v in mine)
    first = mine[0]
    assert (None if first.date is None else str(first.date.date())) == EXPECTED_DATES[rule]
    assert {v.rule for v in rep.violations} == {rule}, rep.violations
    if action == 'reject' or (rule == 'missing_columns' and action == 'warn'):
        with pytest.raises(QualityError, match=rule):
            gate(df, 'T', pol)
        return
    out = gate(df, 'T', pol)
    again = inspect(out, 'T', pol)
    if action == 'repair':
        assert not [v for v in again.violations if v.rule == rule], f'{rule} repair left violations'
    else:  # warn keeps the data as it is
        pd.testing.assert_frame_equal(out, df.astype('float64'))


def test_dhr_everything_reported():
    rep = inspect(DHR, 'DHR')
    got = sorted((v.rule, str(v.date.date()), v.action) for v in rep.violations)
    assert got == [('gap', '2015-03-23', 'warn'), ('nan_prices', '2015-07-17', 'reject'),
                   ('nan_prices', '2016-01-12', 'reject'), ('ohlc_inconsistent', '2014-11-06', 'repair')]
    with pytest.raises(QualityError) as e:
        gate(DHR, 'DHR')
    assert 'DHR 2015-07-17 nan_prices' in str(e.value) and 'DHR 2016-01-12 nan_prices' in str(e.value)


def test_raw_aapl_split_repair_matches_yahoo_adjustment():
    "Back-adjusting the three real splits reproduces the split-adjusted level of the bundled (IEX) AAPL series."
    pol = QualityPolicy().with_actions(split_jump='repair')
    fixed = gate(AAPL_RAW, 'AAPL', pol)
    bundled = BundledSource().history('AAPL', '2013-02-08', '2016-01-04')
    both = fixed.close.loc[bundled.index.intersection(fixed.index)]
    np.testing.assert_allclose(both, bundled.close.loc[both.index], rtol=2e-3)
    real_crash = inspect(AAPL_RAW, 'AAPL').violations
    assert '2000-09-29' not in {str(v.date.date()) for v in real_crash if v.date is not None}


def test_real_big_moves_are_not_splits():
    for t, d in [('AMD', '2016-04-22'), ('FB', '2013-07-25'), ('NVDA', '2016-11-11')]:
        assert inspect(BundledSource().history(t), t).violations == []


def test_every_bundled_file_passes_the_default_gates():
    src = BundledSource()
    for t in src.tickers():
        out = gate(src.history(t), t)
        assert len(out) > 900


def test_seam():
    assert check_seam(MSFT.iloc[:10], MSFT.iloc[10:], 'MSFT') == []
    v = check_seam(MSFT.iloc[:10], MSFT.iloc[10:] / 7, 'MSFT')
    assert v and v[0].action == 'reject' and '7:1' in v[0].detail


def test_policy_validation():
    with pytest.raises(ValueError, match='split_jump'):
        QualityPolicy().with_actions(split_jump='fix')


# --- poisoned bars: the recovery gates ---

def poisoned(**changes):
    "MSFT with some (date, columns) multiplied or set."
    df = MSFT.copy()
    for day, (cols, f) in changes.items():
        d = day.replace('_', '-')[1:]
        df.loc[d, cols] = f(df.loc[d, cols])
    return df


@pytest.mark.parametrize('name, frame, rules', [
    ('1e308 prices', poisoned(d2016_06_01=(['high', 'close'], lambda x: x * 0 + 1e308)), {'absurd_magnitude', 'spike'}),
    ('1e308 volume', poisoned(d2016_06_01=(['volume'], lambda x: x * 0 + 1e308)), {'absurd_magnitude'}),
    ('inf close', poisoned(d2016_06_01=(['close', 'high'], lambda x: x * np.inf)), {'nan_prices'}),
    ('37x for a day', poisoned(d2016_06_01=(['open', 'high', 'low', 'close'], lambda x: x * 37)), {'spike'}),
    ('-70% for a day', poisoned(d2016_06_01=(['open', 'high', 'low', 'close'], lambda x: x * 0.3)), {'spike'}),
    ('37x and stays', poisoned(**{f'd{d.date()}'.replace('-', '_'): (['open', 'high', 'low', 'close'], lambda x: x * 37)
                                  for d in MSFT.loc['2016-06-01':].index}), {'spike'}),
])
def test_poisoned_bars_are_rejected(name, frame, rules):
    rep = inspect(frame, 'MSFT')
    assert {v.rule for v in rep.rejected} == rules, (name, rep.violations)
    assert {str(v.date.date()) for v in rep.rejected} == {'2016-06-01'}
    with pytest.raises(QualityError):
        gate(frame, 'MSFT')


def test_spike_thresholds_come_from_the_policy():
    drop = poisoned(d2016_06_01=(['open', 'high', 'low', 'close'], lambda x: x * 0.6))    # -40% for a day, then back
    assert not inspect(drop, 'MSFT').violations                                         # under the default x2
    tight = QualityPolicy(spike_threshold=0.5)
    assert [v.rule for v in inspect(drop, 'MSFT', tight).rejected] == ['spike']
    # MSFT went from $28 to $90 here
    low_cap = QualityPolicy(max_price=50.0)
    assert {v.rule for v in inspect(MSFT, 'MSFT', low_cap).rejected} == {'absurd_magnitude'}
    assert not inspect(MSFT, 'MSFT', QualityPolicy(max_price=500.0)).violations


def test_real_splits_are_still_split_jumps_not_spikes():
    "The three unadjusted AAPL splits (7:1 is a -86% day) stay `split_jump`; repaired, nothing is left to call a spike."
    rep = inspect(AAPL_RAW, 'AAPL')
    assert not [v for v in rep.violations if v.rule in ('spike', 'absurd_magnitude')]
    fixed = gate(AAPL_RAW, 'AAPL', QualityPolicy().with_actions(split_jump='repair'))
    assert inspect(fixed, 'AAPL').violations == []
    for f in (DHR, SPY):                                   # the other real dirty files: no new complaints
        assert not [v for v in inspect(f, 'X').violations if v.rule in ('spike', 'absurd_magnitude')]


def test_policy_reads_the_new_thresholds_from_settings():
    from trading_workbench.core.config import Settings, SettingsError
    root = Path(__file__).resolve().parents[1]
    pol = QualityPolicy.from_settings(Settings.load(root / 'settings.ini',
                                                    env={'TWB_DATA_SPIKE_THRESHOLD': '0.5',
                                                         'TWB_DATA_MAX_VOLUME': '1e9'}))
    assert pol.spike_threshold == 0.5 and pol.max_volume == 1e9 and pol.actions['spike'] == 'reject'
    with pytest.raises(SettingsError, match='max_daily_factor'):
        Settings.load(root / 'settings.ini', env={'TWB_DATA_MAX_DAILY_FACTOR': '0.5'})
