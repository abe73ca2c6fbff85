"""Checkpoints survive SIGKILL mid-write: the newest checkpoint is always whole, never half a payload."""
import multiprocessing as mp
import os, random, signal, time

import pytest

from trading_workbench.recovery.checkpoints import CheckpointError, CheckpointManager
from trading_workbench.store.db import Store, T

def _save_forever(url, start, saving):
    cm = CheckpointManager(Store(url))
    n = start
    while True:
        items = list(range(n % 300 + 1))
        cm.save('torn', {'seq': n, 'items': items, 'total': sum(items), 'pad': 'x' * (n % 5000)})
        saving.set()   # the parent kills only once the loop is under way
        n += 1

def test_sigkill_never_leaves_half_checkpoint(db_url):
    rng = random.Random(20261124)
    Store(db_url).close()
    ctx = mp.get_context('spawn')
    last_seq = -1
    for trial in range(10):
        saving = ctx.Event()
        p = ctx.Process(target=_save_forever, args=(db_url, last_seq + 1, saving))
        p.start()
        assert saving.wait(120), f'trial {trial}: the writer never saved'
        time.sleep(rng.random() * 0.3)   # a random point inside the write loop
        os.kill(p.pid, signal.SIGKILL); p.join()
        st = Store(db_url)
        cp = CheckpointManager(st).latest('torn')
        assert cp is not None, f'trial {trial}: no checkpoint written'
        assert (
            cp.payload['total'] == sum(cp.payload['items']) and len(cp.payload['items']) == cp.payload['seq'] % 300 + 1
        )
        assert cp.payload['seq'] > last_seq, 'the newest checkpoint went backwards'
        last_seq = cp.payload['seq']
        st.close()

def test_bad_payloads_and_corruption(db_url):
    st = Store(db_url); cm = CheckpointManager(st)
    with pytest.raises(CheckpointError, match='not JSON-serialisable'): cm.save('x', {'t': object()})
    with pytest.raises(CheckpointError, match='not JSON-serialisable'): cm.save('x', {'v': float('inf')})
    with pytest.raises(CheckpointError, match='non-empty'): cm.save('', {})
    assert cm.list('x') == []
    a = cm.save('x', {'n': 1}); b = cm.save('x', {'n': 2}, schema_version=2)
    with st.engine.begin() as c:
        c.execute(T['checkpoints'].update().where(T['checkpoints'].c.id == b.id).values(payload='{"n": 3}'))
    assert cm.latest('x').id == a.id           # the tampered row fails its checksum and is skipped
    assert cm.latest('x', schema_version=1).payload == {'n': 1}
    assert cm.names() == ['x'] and cm.prune('x', keep=1) == 1
    with pytest.raises(CheckpointError, match='at least one'): cm.prune('x', keep=0)
    st.close()
