"""SIGKILL in the middle of a risk action, 20 seeded trials: after restart the action
completes once (no duplicate, no lost
order) and the trading state is what it was (one HALTED change)."""
from __future__ import annotations
import random, shutil, signal, subprocess, sys, time
from pathlib import Path

import pytest

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
from crash_risk_action import NAMES, SETTINGS, restart  # noqa: E402
from risk_book import build, buy_book, closes, settings_with  # noqa: E402
from trading_workbench.store.db import TradingState  # noqa: E402


def template(path: Path) -> Path:
    "A store holding a long book bought at the close of 2018-02-02 (equity recorded that day)."
    clock, store, sb, om, rm = build(str(path), settings_with(**SETTINGS), '2018-02-02 21:05', NAMES, with_prices=False)
    assert om.start().ok
    buy_book(sb, om, closes(NAMES).loc['2018-02-02'].to_dict(), budget=60_000)
    book = {p.ticker: p.quantity for p in sb.positions()}
    sb.close()
    store.close()   # the last connection to close checkpoints the WAL into the file
    assert not Path(str(path) + '-wal').exists() or Path(str(path) + '-wal').stat().st_size == 0
    return book


def check_once(store, sb, book):
    "One HALTED change, one finished action, each of its orders once at the broker and in the journal, the book flat."
    changes = store.trading_states()
    assert [(c.state, c.trigger) for c in changes] == [(TradingState.HALTED, 'daily_loss')], changes
    [act] = store.risk_actions()
    assert (act['kind'], act['status'], act['state_id']) == ('CLOSE_ALL_POSITIONS', 'done',
                                                             changes[0].id), act['status']
    ids = [o['client_order_id'] for o in act['preview']['orders']]
    assert sorted(o['ticker'] for o in act['preview']['orders']) == sorted(book)
    journal = {r['client_order_id']: r for r in store.orders() if r['client_order_id'] in ids}
    at_broker = {c: t for c, t in sb.broker.trackers.items() if c.startswith(act['action_id'])}
    assert set(journal) == set(at_broker) == set(ids), 'lost or extra action orders'
    for o in act['preview']['orders']:
        fills = [f for f in store.fills(o['client_order_id'])]
        assert sum(f.quantity for f in fills) == o['quantity'] == book[o['ticker']], (o, fills)
        assert journal[o['client_order_id']]['state'] == 'filled'
    assert sb.positions() == [] and store.positions('PAPER') == []


@pytest.mark.timeout(300)
def test_sigkill_mid_action_completes_once(tmp_path):
    tpl = tmp_path / 'template.db'
    book = template(tpl)
    rng = random.Random(20261125)
    mid = 0
    for trial in range(20):
        db = tmp_path / f'crash{trial}.db'
        shutil.copy(tpl, db)
        p = subprocess.Popen([sys.executable, str(HERE / 'crash_risk_action.py'), str(db)], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
        assert p.stdout.readline().strip() == 'READY', p.stderr.read()
        for _ in range(rng.randrange(0, 3 * len(NAMES))):    # a status, a fill and a filled status per order
            if not p.stdout.readline(): break
        time.sleep(rng.uniform(0.0, 0.003))
        p.send_signal(signal.SIGKILL)
        out, _ = p.communicate()
        mid += 'DONE' not in out
        clock, store, sb, om, rm, px = restart(str(db))
        try:
            assert om.start().ok
            rm.resume_pending()                              # finishes an action a crash left executing
            # re-evaluates: journals and fires a lost action, never a second one
            rep = rm.check(px)
            assert rep.state is TradingState.HALTED
            check_once(store, sb, book)
            n_orders = len(store.orders())
            assert rm.resume_pending() == [] and rm.check(px).actions == () and len(store.orders()) == n_orders
        finally:
            sb.close(); store.close()
    assert mid >= 15, f'only {mid} of 20 kills landed before the action finished'
