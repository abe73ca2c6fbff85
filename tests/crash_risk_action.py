"""Child process for the risk-action crash test: a check that trips the daily-loss limit and fires CLOSE_ALL_POSITIONS.

Usage: python crash_risk_action.py DB_PATH
Prints READY once reconciled, then EVENT per broker event while the action runs; the parent
kills it after a random number.
"""
from __future__ import annotations
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from risk_book import build, closes, settings_with  # noqa: E402

DAY, NAMES = '2018-02-05', ['AAPL', 'MSFT', 'JPM', 'XOM', 'KO', 'JNJ', 'PG', 'WMT', 'INTC', 'CSCO', 'IBM', 'HD']
SETTINGS = dict(daily_loss_limit_pct=0.02, daily_loss_action='close_all')


def restart(db: str):
    "The objects a (re)started process builds, marked at the day's closes."
    clock, store, sb, om, rm = build(db, settings_with(**SETTINGS), f'{DAY} 21:05', NAMES, with_prices=False)
    px = closes(NAMES).loc[DAY].to_dict()
    sb.run(sb.broker.mark(px))
    return clock, store, sb, om, rm, px


if __name__ == '__main__':
    clock, store, sb, om, rm, px = restart(sys.argv[1])
    rep = om.start()
    if not rep.ok: sys.exit(f'reconciliation failed: {rep.problems}')
    print('READY', flush=True)
    sb.events.subscribe(lambda ev: print('EVENT', type(ev).__name__, flush=True))   # lets the parent aim its kill
    r = rm.check(px)
    print('DONE', r.state.value, r.actions, flush=True)
    sb.close()
