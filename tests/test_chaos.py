"""The chaos suite: every drill through `twb drill all` (zeros in the lost and duplicated columns); the broker faults
again with IBKRBroker over a real socket to the TWS-protocol test server; orders refused by the circuit breaker decided
again after a resume; and the daily run failing in a cell, killed outright, reaped and resumed."""
from __future__ import annotations
import contextlib, dataclasses, json, os, signal, sqlite3, subprocess, sys, threading, time
from pathlib import Path

import pytest

from conftest import ROOT
from trading_workbench.testing.tws_server import Plan, TWSServer
from trading_workbench.core.clock import FixedClock
from trading_workbench.core.config import Settings
from trading_workbench.core.types import Order, Provenance, Signal
from trading_workbench.execution.broker import NotConnected, SyncBroker
from trading_workbench.execution.ibkr import IBKRBroker
from trading_workbench.execution.orders import OrderManager, limit_for, resume
from trading_workbench.execution.paper import PaperBroker
from trading_workbench.recovery.disaster import DisasterRecovery
from trading_workbench.recovery.procedures import SafeState
from trading_workbench.recovery.runs import release_refused
from trading_workbench.risk.manager import RiskGate, RiskManager
from trading_workbench.store.db import Store, TradingState

TWB = str(Path(sys.executable).parent / 'twb')
PRICES = {'AAPL': 159.54, 'MSFT': 89.61}
ISSUE_FAULTS = {'kill_mid_order', 'gateway_drop', 'gateway_silent', 'data_source_down', 'stale_data', 'poisoned_ticker',
                'model_raising',
                'model_hanging', 'store_locked', 'disk_full', 'corrupt_checkpoint', 'clock_jump', 'llm_down'}


def settings(**recovery) -> Settings:
    s = Settings.from_text((ROOT / 'settings.ini').read_text(), env={}, root=ROOT)
    return dataclasses.replace(s, recovery=dataclasses.replace(s.recovery, **recovery))


# -- every drill, through the command ----------------------------------------------------------------------------------
def test_twb_drill_all_prints_every_fault_with_zero_lost_and_duplicated(tmp_path):
    r = subprocess.run([TWB, '--settings', str(ROOT / 'settings.ini'), '--log-level', 'CRITICAL', 'drill', 'all'],
                       capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr[-3000:]
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith('| ')]
    assert lines[0] == '| scenario | safe state reached | seconds to recover | orders lost | orders duplicated |'
    rows = {c[0]: c[1:] for c in ([x.strip() for x in ln.strip('|').split('|')] for ln in lines[1:])}
    assert len(rows) >= 12 and ISSUE_FAULTS <= set(rows)
    for name, (state, secs, lost, dup) in rows.items():
        assert state in {'recovered', 'degraded', 'no_trading', 'halted', 'flat'}, (name, state)
        assert float(secs) >= 0 and (lost, dup) == ('0', '0'), (name, lost, dup)
    assert (
        rows['gateway_silent'][0] == 'halted' and rows['disk_full'][0] == 'halted' and rows['risk_breach'][0] == 'flat'
    )


# -- the broker procedure over a real socket ---------------------------------------------------------------------------
class IBRig:
    "A store, IBKRBroker to the TWS test server, order manager with the risk gate, risk manager and the dispatcher."
    def __init__(self, tmp_path, **recovery):
        self.settings = settings(reconnect_max_wait_s=0.2, **recovery)
        self.clock = FixedClock('2026-11-24 15:00')
        self.store = Store(f'sqlite:///{tmp_path}/ib.db', clock=self.clock)
        self.b = IBKRBroker(self.settings, self.clock, ack_timeout=0.5, reconnect_attempts=1, reconnect_max_wait=0.1,
                            connect_timeout=3)
        self.sb = SyncBroker(self.b)
        self.srv = TWSServer(prices=PRICES)
        self.b.port = self.sb.run(self.srv.start())
        self.om = OrderManager(self.sb, self.store, self.settings, self.clock, order_timeout=2.0,
                               gate=RiskGate(self.store), account_name='IBKR')
        self.rm = RiskManager(self.store, self.om, self.settings, self.clock, account='IBKR')
        self.dr = DisasterRecovery(self.store, self.settings, self.clock, orders=self.om, risk=self.rm)
        assert self.om.start().ok

    def buy(self, coid, ticker='AAPL', qty=10) -> Order:
        return Order(coid, ticker, 'BUY', qty, limit_price=limit_for('BUY', PRICES[ticker]), run_id='chaos')

    def executed(self) -> dict[str, int]:
        out = {}
        for f in self.sb.executions(): out[f.client_order_id] = out.get(f.client_order_id, 0) + f.quantity
        return out

    def close(self):
        self.sb.run(self.srv.stop()); self.sb.close(); self.store.close()


def test_gateway_drop_on_ibkr_reconnects_reconciles_cancels_and_trades_once(tmp_path):
    rig = IBRig(tmp_path, reconnect_window_s=10, on_broker_return='hold')
    try:
        a = rig.buy('chaos-AAPL')
        assert rig.om.manage_order_lifecycle(a, PRICES['AAPL']).status == 'COMPLETE'
        w = rig.buy('chaos-MSFT-working', 'MSFT')
        # rests at the gateway: cancelled by the recovery
        rig.srv.plans[w.client_order_id] = Plan(hold=True)
        assert rig.om.manage_order_lifecycle(w, PRICES['MSFT'], follow=False).status == 'WORKING'
        rig.srv.faults.refuse_connections = True
        rig.srv.drop_all()                                                   # the gateway restarts ...
        # ... and is back in a second
        threading.Timer(1.0, lambda: setattr(rig.srv.faults, 'refuse_connections', False)).start()
        res = rig.dr.handle_system_failure(NotConnected('IB gateway connection lost'))
        assert res.state is SafeState.RECOVERED and rig.om.ready, res
        assert res.detail['attempts'] >= 2 and res.detail['positions'] == {'AAPL': 10}
        assert rig.store.order(w.client_order_id)['state'] == 'cancelled' and any('chaos-MSFT-working' in x
                                                                                  for x in res.actions)
        m = rig.buy('chaos-MSFT', 'MSFT')
        assert rig.om.manage_order_lifecycle(m, PRICES['MSFT']).status == 'COMPLETE'
        # decided again: never sent twice
        assert rig.om.manage_order_lifecycle(m, PRICES['MSFT']).status == 'DUPLICATE'
        assert rig.executed() == {'chaos-AAPL': 10, 'chaos-MSFT': 10}
        assert 'recovery.broker' in set(rig.store.alerts().source)
    finally: rig.close()


def test_gateway_silent_on_ibkr_halts_with_the_exposure_at_risk(tmp_path):
    rig = IBRig(tmp_path, reconnect_window_s=1.5, on_broker_return='flatten')
    try:
        a = rig.buy('silent-AAPL', qty=20)
        assert rig.om.manage_order_lifecycle(a, PRICES['AAPL']).status == 'COMPLETE'
        rig.srv.faults.silent_after_start = True
        rig.srv.drop_all()                                                   # back, but answers nothing after startApi
        res = rig.dr.handle_system_failure(NotConnected('IB gateway connection lost'))
        assert res.state is SafeState.HALTED and not rig.om.ready
        assert res.detail['positions'] == {'AAPL': 20} and res.detail['gross'] > 0
        s = rig.store.trading_state()
        assert (
            s.state is TradingState.HALTED
            and s.trigger == 'broker_failure'
            and 'Nothing can be closed through a dead link' in s.reason
        )
        assert rig.store.orders(run_id=None)[-1]['client_order_id'] == 'silent-AAPL'   # no close order was pretended
        refused = rig.om.manage_order_lifecycle(rig.buy('silent-late'), PRICES['AAPL'])
        assert refused.status == 'REJECTED' and rig.store.order('silent-late') is None
    finally: rig.close()


# -- the circuit breaker: refused orders never left, so after a resume they are decided again --------------------------
def test_orders_refused_while_reducing_are_decided_again_after_resume(tmp_path):
    s = settings()
    clock = FixedClock('2018-02-07 21:05')
    store = Store(f'sqlite:///{tmp_path}/cb.db', clock=clock)
    sb = SyncBroker(PaperBroker(store, s, clock))
    om = OrderManager(sb, store, s, clock, gate=RiskGate(store), account_name='PAPER')
    try:
        assert om.start().ok
        sig = Signal('AAPL', 'BUY', 0.8, 0.2, 0.01, 5, PRICES['AAPL'], clock.now(), Provenance('samossa', '1'))
        store.set_trading_state(TradingState.REDUCING, 'position_loss 30% > 25%', trigger='position_loss')
        [r1] = om.execute([sig], PRICES, 'daily-2018-02-07')
        assert r1.status == 'REJECTED' and {'circuit_breaker', 'risk_state'} <= set(r1.reasons)
        [again] = om.execute([sig], PRICES, 'daily-2018-02-07')
        assert again.status == 'DUPLICATE'                                   # still REDUCING: nothing changes
        assert release_refused(store, 'daily-2018-02-07') == []
        resume(store, reason='checked the book')
        assert release_refused(store, 'daily-2018-02-07') == [r1.order.client_order_id]
        [r2] = om.execute([sig], PRICES, 'daily-2018-02-07')
        assert r2.status == 'COMPLETE' and r2.order.client_order_id == r1.order.client_order_id
        assert [f.quantity for f in sb.executions()] == [r1.order.quantity]
        [r3] = om.execute([sig], PRICES, 'daily-2018-02-07')
        assert r3.status == 'DUPLICATE' and len(sb.executions()) == 1
        events = [e['message'] for e in store.order_events(r1.order.client_order_id)]
        assert any('released by resume' in m for m in events)
    finally: sb.close(); store.close()


# -- the daily run: a failing cell, a kill, the reaper, the resume -----------------------------------------------------
FAST = dict(TWB_DATA_SOURCES='bundled', TWB_FLAGS_ENABLE_SARIMAX='false', TWB_FLAGS_ENABLE_GARCH='false',
            TWB_FLAGS_ENABLE_MSSA_RL='false',
            TWB_FLAGS_ENABLE_LLM='false', TWB_UNIVERSE_TICKERS='AAPL,MSFT,KO,XOM', TWB_RUNNER_MAX_WORKERS='1')

@pytest.fixture
def project(tmp_path):
    (tmp_path / 'settings.ini').write_text((ROOT / 'settings.ini').read_text())
    return tmp_path

def twb(project: Path, *args, wait=True, **env):
    e = {k: v for k, v in os.environ.items() if not k.startswith('TWB_')} | FAST | env
    cmd = [TWB, '--settings', str(project / 'settings.ini'), *args]
    if not wait: return subprocess.Popen(cmd, env=e, cwd=project, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                         start_new_session=True)
    return subprocess.run(cmd, capture_output=True, text=True, env=e, cwd=project, timeout=600)

def db(project: Path) -> sqlite3.Connection: return sqlite3.connect(project / 'runs' / 'workbench.db')

def runs(project: Path) -> dict[str, tuple]:
    with db(project) as c: return {r[0]: r[1:]
                                   for r in c.execute('select run_id, status, report, params from runs order by '
                                                      'started_at')}


def test_a_run_that_fails_in_a_cell_marks_itself_failed(project):
    r = twb(project, 'run', 'daily', '--date', '2018-02-07', '--tickers', 'ZZZZ', '--quiet')
    assert r.returncode != 0
    [(status, report, _)] = runs(project).values()
    assert (
        status == 'failed'
        and 'NoUsableData' in json.loads(report)['error']
        and json.loads(report)['failed_by'] == 'run'
    )


def test_a_killed_run_is_reaped_and_the_day_resumes_without_duplicates(project):
    p = twb(project, 'run', 'daily', '--date', '2018-02-07', '--quiet', wait=False)
    deadline = time.monotonic() + 300
    try:
        # kill it once the models' signals are stored: each look holds the store's write lock, so the run cannot
        # finish between seeing its signals and the kill (the rest of a day takes well under a second now)
        while time.monotonic() < deadline:
            time.sleep(0.05)
            if not (project / 'runs' / 'workbench.db').exists(): continue
            c = sqlite3.connect(project / 'runs' / 'workbench.db', timeout=60, isolation_level=None)
            try:
                c.execute('BEGIN IMMEDIATE')
                cps = [json.loads(x) for x, in c.execute("select payload from checkpoints "
                                                         "where name = 'daily:2018-02-07'")]
                if any('signals' in cp['steps'] for cp in cps):
                    assert p.poll() is None, 'the run ended before it could be killed'
                    os.killpg(p.pid, signal.SIGKILL)                         # twb, papermill and the kernel, at once
                    break
            except sqlite3.OperationalError: continue                        # schema not there yet
            finally: c.close()
            assert p.poll() is None, 'the run ended before it could be killed'
        else: pytest.fail('the run never stored its signals')
    finally:
        with contextlib.suppress(ProcessLookupError): os.killpg(p.pid, signal.SIGKILL)
    p.wait()
    [killed] = runs(project)
    assert runs(project)[killed][0] == 'running'                             # nothing could write the end
    st = twb(project, 'status')
    assert st.returncode == 0 and f'run {killed} marked failed' in st.stdout and 'is gone' in st.stdout
    status, report, _ = runs(project)[killed]
    assert status == 'failed' and 'crashed' in json.loads(report)['error']

    again = twb(project, 'run', 'daily', '--date', '2018-02-07', '--quiet')
    assert again.returncode == 0, again.stderr[-3000:]
    [rerun] = [k for k in runs(project) if k != killed]
    status, report, params = runs(project)[rerun]
    assert status in ('ok', 'partial') and json.loads(params)['resumed_from'] == killed
    with db(project) as c:
        n_killed, = c.execute('select count(*) from signals where run_id = ?', (killed,)).fetchone()
        n_rerun, = c.execute('select count(*) from signals where run_id = ?', (rerun,)).fetchone()
        over = c.execute('select o.client_order_id from orders o join fills f on f.client_order_id = o.client_order_id '
                         'group by o.client_order_id having sum(f.quantity) > max(o.quantity)').fetchall()
        paper = c.execute('select client_order_id, count(*) from paper_orders group by client_order_id having count(*) '
                          '> 1').fetchall()
    # the models were not run again: their signals were read back
    assert n_killed > 0 and n_rerun == n_killed
    assert over == [] and paper == []                                        # no intent executed more than it asked
