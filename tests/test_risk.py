"""The risk manager on real bundled prices: the gate's property (hypothesis), a replay of January-February 2018 whose
limits must trip on the sell-off of 2018-02-05, and bad marks that must never trip a breaker."""
from __future__ import annotations
import dataclasses, math, tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

from risk_book import NAMES, build, buy_book, closes, settings_with
from trading_workbench.core.types import Order
from trading_workbench.execution.orders import limit_for, reduces_exposure, resume
from trading_workbench.store.db import TradingState

CLOSES = closes()
ROOT_INI = Path(__file__).parents[1] / "settings.ini"


# -- the property: while REDUCING or HALTED no accepted order grows |exposure|; every exit passes ----------------------
orders_st = st.lists(st.tuples(st.sampled_from(NAMES[:4]), st.sampled_from(['BUY', 'SELL']), st.integers(1, 400),
                               st.floats(-0.03, 0.03)), min_size=1, max_size=12)

@hsettings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(state=st.sampled_from([TradingState.REDUCING, TradingState.HALTED]),
       start=st.lists(st.integers(-300, 300), min_size=4, max_size=4), orders=orders_st, day=st.integers(0, 20))
def test_no_accepted_order_grows_exposure_and_every_exit_passes(state, start, orders, day):
    with tempfile.TemporaryDirectory() as tmp:
        d = CLOSES.loc['2018-01-02':].index[day]
        clock, store, sb, om, rm = build(str(Path(tmp) / 'p.db'), settings_with(), f'{d.date()} 21:05',
                                         with_prices=False)
        try:
            assert om.start().ok
            px = {t: float(CLOSES.loc[d, t]) for t in NAMES[:4]}
            sb.run(sb.broker.mark(px))
            for t, q in zip(NAMES[:4], start):                      # the book before the breaker: longs and shorts
                if q: om.manage_order_lifecycle(Order(f's-{t}', t, 'BUY' if q > 0 else 'SELL', abs(q),
                                                      limit_price=limit_for('BUY' if q > 0 else 'SELL', px[t])), px[t])
            store.set_trading_state(state, 'property test', trigger='test')
            for i, (t, side, qty, move) in enumerate(orders):
                px[t] = round(px[t] * (1 + move), 2)
                sb.run(sb.broker.mark({t: px[t]}))
                held = {p.ticker: p.quantity for p in sb.positions()}.get(t, 0)
                o = Order(f'o{i}-{t}', t, side, qty, limit_price=limit_for(side, px[t]))
                r = om.manage_order_lifecycle(o, px[t])
                after = {p.ticker: p.quantity for p in sb.positions()}.get(t, 0)
                if r.status == 'COMPLETE':
                    assert abs(after) <= abs(held) and held * after >= 0, (state, held, o, after)
                if reduces_exposure(o, held):
                    assert r.status == 'COMPLETE' and r.execution.filled_quantity == qty, (held, o, r.reasons)
                else:
                    assert r.status == 'REJECTED' and {'circuit_breaker', 'risk_state'} <= set(r.reasons), (held, o,
                                                                                                            r.reasons)
            assert store.trading_state().state is state             # orders never move the state
        finally:
            sb.close(); store.close()


# -- the replay: January-February 2018 through the paper broker --------------------------------------------------------
def replay(tmp_path, **risk):
    cfg = settings_with(**risk)
    clock, store, sb, om, rm = build(str(tmp_path / 'replay.db'), cfg, '2018-01-02 21:05')
    assert om.start().ok
    buy_book(sb, om, CLOSES.loc['2018-01-02'].to_dict())
    days = []
    for d in CLOSES.loc['2018-01-03':'2018-02-28'].index:
        clock.set(f'{d.date()} 21:05')
        px = CLOSES.loc[d].to_dict()
        sb.run(sb.broker.mark(px)); assert om.start().ok              # the day's reconciliation records equity
        days.append((d.date().isoformat(), rm.check(px)))
    return cfg, clock, store, sb, om, rm, days


def test_replay_trips_on_the_selloff_and_closes_the_book(tmp_path):
    cfg, clock, store, sb, om, rm, days = replay(tmp_path, daily_loss_limit_pct=0.025, daily_loss_action='close_all')
    try:
        states = {d: r.state for d, r in days}
        first = next(d for d, r in days if r.state is not TradingState.ACTIVE)
        assert first == '2018-02-05' and states[first] is TradingState.HALTED
        assert all(r.state is TradingState.HALTED for d, r in days if d >= first)     # only an operator resumes
        [change] = [r for d, r in days if r.changed]
        assert 'daily_loss' in change.reason and change.actions
        rec = store.trading_state()
        assert (rec.trigger, rec.by) == ('daily_loss', 'risk') and rec.inputs['limits']['daily_loss']['breached']
        assert rec.inputs['equity'] == pytest.approx(change.equity)
        act = store.risk_action(change.actions[0])
        assert (act['kind'], act['status']) == ('CLOSE_ALL_POSITIONS', 'done')
        # the action's orders filled in the paper broker, once each, and the book is flat
        fills = [f for f in store.fills() if f.client_order_id.startswith(act['action_id'])]
        assert sorted(f.ticker for f in fills) == sorted(NAMES) and all(f.time.date().isoformat() == first
                                                                        for f in fills)
        assert sb.positions() == [] and store.positions('PAPER') == []
        # equity and positions agree with the store
        acct = sb.account()
        eq = store.equity('PAPER')
        assert eq.equity.iloc[-1] == pytest.approx(acct.equity) and eq.cash.iloc[-1] == pytest.approx(acct.cash)
        assert any(a.startswith('trading HALTED') for a in store.alerts().message)
        # the operator resumes; nothing trips again on a flat book
        resume(store, reason='reviewed the sell-off')
        assert rm.check(CLOSES.iloc[-1].to_dict()).state is TradingState.ACTIVE
    finally:
        sb.close(); store.close()


def test_replay_reduces_on_position_loss_and_waits_for_the_operator(tmp_path):
    cfg, clock, store, sb, om, rm, days = replay(tmp_path, position_loss_pct=0.08, auto_actions=False)
    try:
        first, rep = next((d, r) for d, r in days if r.state is not TradingState.ACTIVE)
        assert rep.state is TradingState.REDUCING and rep.changed and first <= '2018-02-07'
        losses = {c.name: c for c in rep.limits}['position_loss']
        assert losses.breached and losses.tickers
        act = store.risk_action(rep.actions[0])
        assert act['status'] == 'previewed'                         # not automatic: it waits for `twb risk act`
        held = {p.ticker: p.quantity for p in store.positions('PAPER')}
        assert {o['ticker'] for o in act['preview']['orders']} == set(losses.tickers)
        assert all(o['reduce_only'] and o['quantity'] == held[o['ticker']] // 2 for o in act['preview']['orders'])
        # before the operator acts, one of those positions is closed by hand (an exit passes in REDUCING)
        gone = losses.tickers[0]
        px = CLOSES.loc[first].to_dict()
        assert om.manage_order_lifecycle(Order('by-hand', gone, 'SELL', held[gone],
                                               limit_price=limit_for('SELL', px[gone])), px[gone]).status == 'COMPLETE'
        res = rm.act(act['action_id'])
        assert res['ok'] and rm.act(act['action_id']) == store.risk_action(act['action_id'])['result']   # never twice
        # never more than is held
        assert [v['status'] for k, v in res['orders'].items() if f'-{gone}-' in k] == ['NOT_NEEDED']
        after = {p.ticker: p.quantity for p in sb.positions()}
        assert gone not in after and all(after[t] == held[t] - held[t] // 2 for t in losses.tickers if t != gone)
        assert after == {p.ticker: p.quantity for p in store.positions('PAPER')}
    finally:
        sb.close(); store.close()


# -- bad marks never trip a breaker ------------------------------------------------------------------------------------
@pytest.mark.parametrize('bad', [float('nan'), 0.0, 37.0, -1.0, float('inf'), None],
                         ids=['nan', 'zero', 'spike37x', 'negative', 'inf', 'missing'])
def test_a_bad_mark_never_trips_a_breaker(tmp_path, bad):
    # limits tight enough that believing the bad mark would trip every one of them
    cfg = settings_with(max_drawdown_pct=0.05, daily_loss_limit_pct=0.05, position_loss_pct=0.05,
                        max_gross_exposure_pct=1.0)
    clock, store, sb, om, rm = build(str(tmp_path / 'bad.db'), cfg, '2018-02-06 21:05')
    try:
        assert om.start().ok
        px = CLOSES.loc['2018-02-06'].to_dict()
        buy_book(sb, om, px)
        assert rm.check(px).state is TradingState.ACTIVE
        t = 'AAPL'
        marks = {k: v for k, v in px.items() if k != t} if bad is None else {**px, t: bad * px[t] if bad == 37.0
                                                                             else bad}
        if bad is None:   # no mark given and none stored (as when IB reports a position without a market price)
            store.set_positions('PAPER',
                                [dataclasses.replace(p, market_price=None) if p.ticker == t else p
                                 for p in store.positions('PAPER')],
                                clock.now())
        rep = rm.check(marks)
        assert rep.state is TradingState.ACTIVE and not rep.changed and rep.actions == () and rep.unpriced == (t,)
        assert math.isnan(rep.equity) and not any(c.breached for c in rep.limits)
        assert store.trading_state().id == 0 and store.risk_actions() == []
        assert any('cannot price the book' in m and t in m for m in store.alerts().message)   # not silent
        # unknown prices block new risk, never an exit
        sb.run(sb.broker.mark(px))
        r = om.manage_order_lifecycle(Order('new-MSFT', 'MSFT', 'BUY', 5, limit_price=limit_for('BUY', px['MSFT'])),
                                      px['MSFT'])
        assert r.status == 'REJECTED' and 'risk_state' in r.reasons
        q = {p.ticker: p.quantity for p in sb.positions()}['KO']
        assert om.manage_order_lifecycle(Order('exit-KO', 'KO', 'SELL', q, limit_price=limit_for('SELL', px['KO'])),
                                         px['KO']).status == 'COMPLETE'
        # a good mark again: priced, still ACTIVE, new risk allowed
        rep = rm.check(px)
        assert rep.unpriced == () and rep.state is TradingState.ACTIVE and math.isfinite(rep.equity)
        r = om.manage_order_lifecycle(Order('new-MSFT-2', 'MSFT', 'BUY', 5, limit_price=limit_for('BUY', px['MSFT'])),
                                      px['MSFT'])
        assert r.status == 'COMPLETE'
    finally:
        sb.close(); store.close()


# -- TIGHTEN_STOPS: stops rest at the (paper) broker, trigger on a gap, and are only ever moved tighter ----------------
def test_tighten_stops_rest_trigger_and_only_tighten(tmp_path):
    from trading_workbench.risk.manager import ActionKind
    cfg = settings_with(max_var_pct=0.001, var_action='tighten_stops', stop_distance_pct=0.02)
    clock, store, sb, om, rm = build(str(tmp_path / 'stops.db'), cfg, '2018-02-01 21:05')
    try:
        assert om.start().ok
        px = CLOSES.loc['2018-02-01'].to_dict()
        buy_book(sb, om, px)
        held = {p.ticker: p.quantity for p in sb.positions()}
        rep = rm.check(px)
        assert rep.state is TradingState.REDUCING and 'var_95' in rep.reason
        act = store.risk_action(rep.actions[0])
        assert act['kind'] == 'TIGHTEN_STOPS' and act['status'] == 'done'
        stops = {o['ticker']: o for o in act['preview']['orders']}
        assert all(o['order_type'] == 'STP' and o['reduce_only'] and o['quantity'] == held[t]
                   and o['stop_price'] == round(px[t] * 0.98, 2) for t, o in stops.items())
        assert all(r['status'] == 'RESTING' for r in act['result']['orders'].values())
        assert all(sb.order_status(o['client_order_id']).state.value == 'submitted' for o in stops.values())
        # AAPL gaps through its stop: the stop fills, the position is closed; the others keep resting
        sb.run(sb.broker.mark({'AAPL': round(stops['AAPL']['stop_price'] * 0.99, 2)}))
        assert sb.order_status(stops['AAPL']['client_order_id']).state.value == 'filled'
        assert 'AAPL' not in {p.ticker for p in sb.positions()}
        # a later tighten (MSFT up 5%, KO down 5%): MSFT's stop moves up, KO's stays where it is (never loosened)
        up = {**px, 'MSFT': px['MSFT'] * 1.05, 'KO': px['KO'] * 0.99}
        sb.run(sb.broker.mark({'MSFT': up['MSFT'], 'KO': up['KO']}))
        pv = rm.propose(ActionKind.TIGHTEN_STOPS, 'operator', store.trading_state().id, rm.book(up), ('MSFT', 'KO'))
        res = rm.act(pv.action_id)
        assert res['ok'], res
        by_t = {k.split('-')[-3]: v for k, v in res['orders'].items()}
        assert by_t['MSFT']['status'] == 'MODIFIED' and by_t['KO']['status'] == 'RESTING'
        assert sb.order_status(stops['MSFT']['client_order_id']).order.stop_price == round(up['MSFT'] * 0.98, 2)
        assert sb.order_status(stops['KO']['client_order_id']).order.stop_price == stops['KO']['stop_price']
    finally:
        sb.close(); store.close()


# -- the trading-state journal and batch journaling on SQLite and PostgreSQL -------------------------------------------
def test_state_journal_and_batch_journal_on_both_databases(db_url):
    from concurrent.futures import ThreadPoolExecutor
    from trading_workbench.store.db import Store
    from trading_workbench.core.clock import FixedClock
    store = Store(db_url, clock=FixedClock('2018-02-05 21:05'))
    try:
        # two writers race to escalate from ACTIVE: exactly one change is journaled
        with ThreadPoolExecutor(4) as ex:
            recs = list(ex.map(lambda i: store.set_trading_state('HALTED', f'writer {i}', trigger='drawdown',
                                                                 expected='ACTIVE'), range(4)))
        assert sum(r is not None for r in recs) == 1 and len(store.trading_states()) == 1
        assert store.trading_state().state is TradingState.HALTED
        orders = [Order(f'risk-1-x-{t}-SELL', t, 'SELL', 10 + i, 'MKT', run_id='risk-1-x', reduce_only=True) for i,
                  t in enumerate(NAMES)]
        assert store.journal_orders(orders, 'risk action') == len(NAMES) and store.journal_orders(orders) == 0
        rows = store.orders(run_id='risk-1-x')
        assert {r['ticker']: r['quantity'] for r in rows} == {o.ticker: o.quantity for o in orders} and {
            r['state'] for r in rows
        } == {'new'}
        assert all(r['reduce_only'] for r in rows)
        # a resume journals ACTIVE and expires stale previews
        assert store.save_risk_action('risk-1-x', 'CLOSE_ALL_POSITIONS', 'drawdown', {'orders': []}, recs[0].id
                                      if recs[0] else 1)
        resume(store, reason='test')
        assert (
            store.trading_state().state is TradingState.ACTIVE and store.risk_action('risk-1-x')['status'] == 'expired'
        )
    finally:
        store.close()


# -- the operator's commands: twb risk status / preview / act, twb resume ----------------------------------------------
def test_twb_risk_status_preview_act_and_resume(tmp_path, capsys, monkeypatch):
    from trading_workbench.cli import main
    db = tmp_path / 'cli.db'
    env = dict(TWB_STORE_URL=f'sqlite:///{db}', TWB_RISK_AUTO_ACTIONS='false', TWB_RISK_POSITION_LOSS_PCT='0.02')
    for k, v in env.items(): monkeypatch.setenv(k, v)
    cfg = settings_with(auto_actions=False, position_loss_pct=0.02)
    clock, store, sb, om, rm = build(str(db), cfg, '2018-02-02 21:05')
    assert om.start().ok
    # bought at the 02-01 close, marked at the 02-02 close
    buy_book(sb, om, CLOSES.loc['2018-02-01'].to_dict())
    rep = rm.check(CLOSES.loc['2018-02-02'].to_dict())
    assert rep.state is TradingState.REDUCING and rep.actions
    aid, held = rep.actions[0], {p.ticker: p.quantity for p in sb.positions()}
    tickers = {c.name: c for c in rep.limits}['position_loss'].tickers
    sb.close(); store.close()
    ini = str(ROOT_INI)
    assert main(['--settings', ini, 'risk', 'status']) == 0
    out = capsys.readouterr().out
    assert 'trading state: REDUCING' in out and 'position_loss' in out and aid in out
    assert main(['--settings', ini, 'risk', 'preview', aid]) == 0
    out = capsys.readouterr().out
    assert 'REDUCE_POSITIONS  previewed' in out and all(f'{aid}-{t}-SELL' in out for t in tickers)
    assert main(['--settings', ini, 'risk', 'act', aid]) == 0
    assert 'action done' in capsys.readouterr().out
    assert main(['--settings', ini, 'risk', 'act', aid]) == 0        # a finished action is never fired again
    capsys.readouterr()
    from trading_workbench.store.db import Store
    st = Store(f'sqlite:///{db}')
    try:
        after = {p.ticker: p.quantity for p in st.positions('PAPER')}
        assert {t: after[t] for t in tickers} == {t: held[t] - held[t] // 2 for t in tickers}
        assert len([r for r in st.orders() if r['run_id'] == aid]) == len(tickers)
    finally:
        st.close()
    assert main(['--settings', ini, 'resume', '--reason', 'losses cut by half']) == 0
    assert 'resumed: ACTIVE (was REDUCING: position_loss' in capsys.readouterr().out


@pytest.mark.parametrize('key,value',
                         [('DRAWDOWN_ACTION', 'explode'), ('REDUCE_FRACTION', '1.5'), ('REDUCE_FRACTION', 'nan'),
                                       ('MAX_VAR_PCT', '0'), ('VAR_WINDOW', '5'), ('STOP_DISTANCE_PCT', '1'),
                                       ('AUTO_ACTIONS', 'maybe')])
def test_bad_risk_settings_are_clear_errors(key, value):
    from trading_workbench.core.config import Settings, SettingsError
    with pytest.raises(SettingsError, match=f'\\[risk\\] {key.lower()}'):
        Settings.from_text(ROOT_INI.read_text(), env={f'TWB_RISK_{key}': value})
