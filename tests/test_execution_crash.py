"""SIGKILL a process submitting a batch at random points (seeded); after restart and reconciliation:
no duplicate, no lost order."""
from __future__ import annotations
import random, signal, subprocess, sys, time
from pathlib import Path
import pytest

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
from crash_paper_batch import build, batch  # noqa: E402

N = 12


def check_consistent(store, sb, run_id, sigs):
    "The journal, the store's fills and positions agree with the broker; every signal has exactly one order."
    b = sb.broker
    journal = {r['client_order_id']: r for r in store.orders(run_id=run_id)}
    at_broker = {c: t for c, t in b.trackers.items() if t.order.run_id == run_id}
    assert len(journal) == len(sigs), f'lost orders: {len(journal)} journaled for {len(sigs)} signals'
    assert set(at_broker) == set(journal), f'journal/broker differ: {set(at_broker) ^ set(journal)}'
    per_ticker = {}
    for c in journal: per_ticker[journal[c]['ticker']] = per_ticker.get(journal[c]['ticker'], 0) + 1
    assert all(v == 1 for v in per_ticker.values()), f'duplicates: {per_ticker}'
    for c, row in journal.items():
        s = at_broker[c].snapshot()
        assert (row['state'], row['filled_quantity']) == (s.state.value, s.filled_quantity), (c, row['state'], s)
    fills = {f.exec_id for f in store.fills() if f.client_order_id in journal}
    assert fills == {f.exec_id for t in at_broker.values() for f in t.fills.values()}
    assert {p.ticker: p.quantity for p in store.positions('PAPER')} == {t: h.quantity for t, h in b.holdings.items()
                                                                        if h.quantity}


@pytest.mark.timeout(170)
def test_sigkill_at_random_points(tmp_path):
    rng = random.Random(20261124)
    killed_mid_batch = 0
    for trial in range(20):
        db, run_id = tmp_path / f'crash{trial}.db', f'crash-{trial}'
        p = subprocess.Popen([sys.executable, str(HERE / 'crash_paper_batch.py'), str(db), run_id, str(N)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert p.stdout.readline().strip() == 'READY', p.stderr.read()
        # a status and a fill event per order: kill somewhere inside the batch
        for _ in range(rng.randrange(0, 2 * N)):
            if not p.stdout.readline(): break
        time.sleep(rng.uniform(0.0, 0.005))
        p.send_signal(signal.SIGKILL)
        out, _ = p.communicate()
        killed_mid_batch += 'DONE' not in out
        # restart: a new process's worth of objects on the same database
        settings, clock, store, sb, oms = build(str(db))
        try:
            rep = oms.start()
            assert rep.ok, rep.problems
            sigs, prices = batch(clock, N)
            results = oms.execute(sigs, prices, run_id)                # resumes what the killed run did not finish
            assert all(r.status in ('COMPLETE', 'DUPLICATE') for r in results), [r.reasons for r in results]
            check_consistent(store, sb, run_id, sigs)
            again = oms.execute(sigs, prices, run_id)                  # and a third run changes nothing
            assert all(r.status == 'DUPLICATE' for r in again)
        finally:
            sb.close(); store.close()
    assert killed_mid_batch >= 15, f'only {killed_mid_batch} of 20 kills landed mid-batch'
