"""The backtest's last session places the orders a papermill daily run of that session places.

Backtest A replays 2018-01-29 .. 2018-02-07 in one process. Backtest B replays the same sessions but the
last into the daily run's own store and account (PAPER, orders `daily-<date>`, as `make demo` will build
history); then `twb run daily --date 2018-02-07` runs the papermill notebook on that store. A's state
before its last session is B's (same refits, same updates, same fills), so the two must place the same
orders on 2018-02-07: same tickers, sides, quantities and limit prices."""
import os, subprocess, sys
from pathlib import Path

import pandas as pd

from conftest import ROOT
from ollama_server import refused_url
from trading_workbench.core.config import Settings
from trading_workbench.store.db import Store
from trading_workbench.validation.backtest import backtest_store, run_backtest

TWB = str(Path(sys.executable).parent / 'twb')
TICKERS = 'AAPL,KO,XOM,MSFT,JPM,INTC'
START, PREV, END = '2018-01-29', '2018-02-06', '2018-02-07'
COLS = ['ticker', 'side', 'quantity', 'limit']

def test_last_day_places_the_daily_runs_orders(tmp_path):
    (tmp_path / 'settings.ini').write_text((ROOT / 'settings.ini').read_text())
    env = {k: v for k, v in os.environ.items() if not k.startswith('TWB_')}
    # no LLM in either: the backtest never runs it
    env.update(TWB_UNIVERSE_TICKERS=TICKERS, TWB_LLM_HOST=refused_url())
    settings = Settings.load(tmp_path / 'settings.ini', env=env)

    a = backtest_store(settings, 'a', f"sqlite:///{tmp_path / 'a.db'}", start=pd.Timestamp(START))
    full = run_backtest(settings, a, START, END, refit='M', account='PAPER', order_prefix='daily', progress=False)
    a.close()
    b = backtest_store(settings, 'b', settings.store.url, start=pd.Timestamp(START))   # the daily run's store
    head = run_backtest(settings, b, START, PREV, refit='M', refit_last=False, account='PAPER', order_prefix='daily',
                        progress=False)
    b.close()
    # the replays agree up to the day before: same orders, and the same book
    before = full.orders[full.orders.session <= PREV].reset_index(drop=True)
    pd.testing.assert_frame_equal(before[COLS + ['status', 'filled']], head.orders[COLS + ['status', 'filled']])
    assert full.days.equity.loc[PREV] == head.days.equity.loc[PREV]

    r = subprocess.run([TWB, '--settings', str(tmp_path / 'settings.ini'), 'run', 'daily', '--date', END, '--quiet'],
                       capture_output=True, text=True, env=env, cwd=tmp_path, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    store = Store(settings.store.url)
    daily = pd.DataFrame(store.orders(run_id=f'daily-{END}'))
    run = store.runs('daily').iloc[0]
    daily_signals = store.signals(run.run_id)
    store.close()
    a = Store(f"sqlite:///{tmp_path / 'a.db'}")
    our_signals = a.signals(f'{full.run_id}-{END}')
    a.close()
    # the last session refits, so every model's signal is the daily run's: same action, confidence, expected return,
    # risk
    key = lambda f: f.sort_values(['ticker', 'model']).reset_index(drop=True)[['ticker', 'model', 'action',
                                                                               'confidence',
                                                                                'expected_return', 'risk_score',
                                                                                'current_price']]
    assert len(our_signals) == 4 * len(TICKERS.split(','))
    pd.testing.assert_frame_equal(key(our_signals), key(daily_signals), rtol=1e-9)
    # and the same decisions: orders placed, and tickers left at target
    assert run.report['orders'] == full.last_orders.status.value_counts().to_dict()
    # rows without an order were at target already
    ours = full.last_orders.query("client_order_id != ''")
    assert len(ours) >= 1                                                       # the comparison is about something
    got = daily.rename(columns={'limit_price': 'limit'})[COLS].sort_values('ticker').reset_index(drop=True)
    want = ours[COLS].sort_values('ticker').reset_index(drop=True)
    pd.testing.assert_frame_equal(got, want, check_dtype=False)
    assert set(daily.client_order_id) == set(ours.client_order_id)             # same ids: the same signals decided them

def test_backtest_writes_to_postgresql(fresh_pg_url):
    """The backtest into a PostgreSQL store: every session marked, every order journaled with
    its fills, the run recorded."""
    settings = Settings.load(ROOT / 'settings.ini', env={})
    store = backtest_store(settings, 'pg', fresh_pg_url, start=pd.Timestamp('2018-02-01'))
    res = run_backtest(settings, store, '2018-02-01', '2018-02-07', tickers='AAPL,KO,XOM', refit='W', progress=False)
    assert len(store.equity('BACKTEST')) == len(res.days) == 5
    placed = res.orders.query("client_order_id != ''")
    assert len(placed) >= 1 and {r['client_order_id'] for r in store.orders(run_id=None)} == set(placed.client_order_id)
    assert {f.exec_id for f in store.fills()} == {f.exec_id for f in res.fills}
    run = store.runs('backtest').iloc[0]
    assert run.status == 'ok' and set(run.report['metrics']) == {'strategy', 'buy_and_hold'}
    store.close()
