"""SIGKILL a process sending orders to the TWS test server while acknowledgements are slow (seeded): after restart, no
duplicate, no lost order."""
from __future__ import annotations
import asyncio, random, signal, subprocess, sys, threading, time
from pathlib import Path
import pytest

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
from trading_workbench.testing.tws_server import TWSServer  # noqa: E402
from crash_ibkr_batch import PRICES, build, batch  # noqa: E402

N, TRIALS = 5, int(__import__("os").environ.get("TWB_CRASH_TRIALS", 30))


class ServerThread:
    "The TWS test server on its own event-loop thread: it outlives the processes that talk to it, as a gateway does."
    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
    def call(self, coro): return asyncio.run_coroutine_threadsafe(coro, self.loop).result(10)
    def close(self):
        self.loop.call_soon_threadsafe(self.loop.stop); self.thread.join(5)


def check(store, srv, run_id, sigs):
    "One order per signal everywhere: journal, gateway, store fills; states and fills agree with the gateway."
    journal = {r['client_order_id']: r for r in store.orders(run_id=run_id)}
    at_gw = [o for o in srv.orders.values() if o.order_ref.startswith(run_id + '-')]
    refs = [o.order_ref for o in at_gw]
    assert len(refs) == len(set(refs)), f'duplicate orders at the gateway: {sorted(refs)}'
    assert set(refs) == set(journal) and len(journal) == len(sigs), (
        f'lost: journal {sorted(journal)}, gateway {sorted(refs)}'
    )
    assert len({r['ticker'] for r in journal.values()}) == len(sigs)
    for o in at_gw:
        row = journal[o.order_ref]
        assert (row['state'], row['filled_quantity']) == ('filled', int(o.filled)), (o.order_ref, row['state'],
                                                                                     o.status, o.filled)
    execs = {e.exec_id for e in srv.execs if e.order.order_ref in journal}
    assert {f.exec_id for f in store.fills() if f.client_order_id in journal} == execs


@pytest.mark.timeout(240)
def test_sigkill_while_acknowledgements_are_slow(tmp_path):
    rng = random.Random(20261125)
    st = ServerThread()
    landed = in_flight = 0
    try:
        for trial in range(TRIALS):
            srv = TWSServer(prices=PRICES)
            # journaled, sent, not yet acknowledged: the kill's window
            srv.faults.ack_delay = rng.uniform(0.05, 0.2)
            port = st.call(srv.start())
            db, run_id = tmp_path / f'k{trial}.db', f'k{trial}'
            p = subprocess.Popen([sys.executable, str(HERE / 'crash_ibkr_batch.py'), str(db), str(port), run_id,
                                  str(N)],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            assert p.stdout.readline().strip() == 'READY', p.stderr.read()
            for _ in range(rng.randrange(0, 3 * N)):
                if not p.stdout.readline(): break
            time.sleep(rng.uniform(0.0, srv.faults.ack_delay))
            p.send_signal(signal.SIGKILL)
            out, _ = p.communicate()
            landed += 'DONE' not in out
            srv.faults.ack_delay = 0.0
            clock, store, sb, oms = build(str(db), port)                 # the restarted process
            try:
                unacked = {r['client_order_id'] for r in store.orders(run_id=run_id)
                           if r['state'] in ('new', 'pending_submit')}
                # journaled and sent, no answer yet
                in_flight += bool(unacked & {o.order_ref for o in srv.orders.values()})
                rep = oms.start()
                assert rep.ok, rep.problems
                sigs, prices = batch(clock, N)
                res = oms.execute(sigs, prices, run_id)
                assert all(r.status in ('COMPLETE', 'DUPLICATE') for r in res), [(r.status, r.reasons) for r in res]
                check(store, srv, run_id, sigs)
                assert all(r.status == 'DUPLICATE' for r in oms.execute(sigs, prices, run_id))
            finally:
                sb.close(); store.close(); st.call(srv.stop())
    finally:
        st.close()
    assert landed >= TRIALS * 3 // 4, f'only {landed} of {TRIALS} kills landed mid-batch'
    print(f'kills mid-batch: {landed}/{TRIALS}; between journal and acknowledgement: {in_flight}/{TRIALS}')
    assert in_flight >= TRIALS // 2, f'only {in_flight} of {TRIALS} kills landed between journal and acknowledgement'
