"""validation.walk_forward and validation.skill: no look-ahead in any scheme, failures reported, executors agree,
results stored transactionally on SQLite and PostgreSQL and readable by a skill gate, and `twb validate` end to end."""
from __future__ import annotations
import concurrent.futures as cf
import math
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings as hsettings, strategies as st
from trading_workbench.core.types import Forecast
from trading_workbench.models.base import FitInfo, ModelInputError, bundled_closes, check_new, check_series
from trading_workbench.models.samossa import SAMoSSA
from trading_workbench.store.db import Store, T
from trading_workbench.validation.skill import (
    latest_skill,
    load_forecasts,
    save_run,
    skill_table,
    validate,
    with_direction,
)
from trading_workbench.validation.walk_forward import (ModelSpec, WalkForwardPlan, origins_for, purged_blocks,
                                                       run_walk_forward, walk_series)

Y = bundled_closes('AAPL')['AAPL']


class LastSeen:
    "A real forecaster whose forecast is the last price it has seen: any look-ahead shows as a wrong mean."
    name, version = 'last_seen', '1'
    def __init__(self, fail_at: float | None = None): self.fail_at, self.fit_info = fail_at, None
    def params(self): return dict(fail_at=self.fail_at)
    def fit(self, y, X=None):
        y = check_series(y, min_length=20, positive=True)
        self.last, self.n_fit, self.fit_info = float(y.iloc[-1]), len(y), FitInfo(y, 0.0)
        return self
    def filter(self, y, X=None):
        y = check_series(y, positive=True); self.last = float(y.iloc[-1]); return self
    def update(self, y_new, X_new=None):
        y_new = check_new(y_new, positive=True)
        if self.fail_at is not None and float(y_new.iloc[-1]) == self.fail_at: raise ValueError('boom')
        self.last = float(y_new.iloc[-1]); return self
    def forecast(self, horizon, X=None):
        m = (self.last,) * horizon
        return Forecast(self.name, mean=m, lower=tuple(v * 0.9 for v in m), upper=tuple(v * 1.1 for v in m))


@pytest.mark.parametrize('plan',
                         [WalkForwardPlan(n_origins=300, refit_every=70), WalkForwardPlan(n_origins=300, refit_every=1),
                                  WalkForwardPlan(n_origins=300, refit_every=50, scheme='rolling', window=100),
                                  WalkForwardPlan(n_origins=300, scheme='blocked', n_blocks=3, horizons=(1, 3, 10))],
                         ids=['expanding', 'refit-every-step', 'rolling', 'blocked'])
def test_no_lookahead(plan):
    wf, d = walk_series(ModelSpec(LastSeen), Y, plan, 'AAPL')
    assert d.forecasts == 300 and len(wf) == 300 * len(plan.horizons)
    # saw exactly the bars up to the origin
    assert np.array_equal(wf['mean'].to_numpy(), Y.reindex(wf.origin).to_numpy())
    assert (wf.target > wf.origin).all() and np.array_equal(wf.actual.to_numpy(), Y.reindex(wf.target).to_numpy())


def test_truncation_changes_nothing_before_the_cut():
    plan = WalkForwardPlan(n_origins=200, refit_every=60)
    full, _ = walk_series(ModelSpec(SAMoSSA), Y, plan, 'AAPL')
    cut = Y.iloc[:-50]                          # fewer bars: the origins shift, the fits must not see the future
    first = full.origin.min()
    part, _ = walk_series(ModelSpec(SAMoSSA), cut, WalkForwardPlan(n_origins=150, refit_every=60), 'AAPL')
    assert part.origin.min() == first
    m = full.merge(part, on=['horizon', 'origin'], suffixes=('', '_cut'))
    assert len(m) == len(part) and np.allclose(m['mean'], m['mean_cut'], rtol=1e-12)


@hsettings(max_examples=60, deadline=None)
@given(st.integers(50, 400), st.integers(2, 8), st.integers(1, 10), st.integers(0, 10))
def test_purged_blocks_never_train_on_test_outcomes(n_org, k, purge, embargo):
    n = n_org + 120
    org = np.arange(n - n_org - purge, n - purge)
    blocks = purged_blocks(org, k, purge, embargo, n)
    assert np.array_equal(np.concatenate([b[0] for b in blocks]), org)
    for blk, before, after in blocks:
        first_outcome, last_outcome = blk[0] + 1, blk[-1] + purge       # bars that are outcomes of the block's origins
        assert before.stop - 1 < first_outcome - purge + 1 and before.stop - 1 <= blk[0] - purge
        assert not len(after) or after.start > last_outcome + embargo


def test_failures_are_reported_and_refit():
    tail = Y.iloc[-310:]
    k = next(k for k in range(-100, -50) if (tail == Y.iloc[k]).sum() == 1)        # a close that occurs once
    bad_price = float(Y.iloc[k])
    wf, d = walk_series(ModelSpec(LastSeen, {'fail_at': bad_price}), Y, WalkForwardPlan(n_origins=300, refit_every=100),
                        'AAPL')
    assert d.step_failures == 1 and 'boom' in d.first_error and d.forecasts == 299
    assert Y.index[k] not in set(wf.origin) and Y.index[k + 1] in set(wf.origin)     # refitted at the next origin


@pytest.mark.parametrize('bad', [np.nan, np.inf, -1.0, 0.0])
def test_hostile_prices(bad):
    y = Y.copy(); y.iloc[500] = bad
    with pytest.raises(ModelInputError): walk_series(ModelSpec(SAMoSSA), y, WalkForwardPlan(n_origins=100), 'AAPL')


def test_plan_and_origins_validation():
    for kw in (dict(horizons=()), dict(horizons=(1, 1)), dict(n_origins=0), dict(refit_every=True),
               dict(scheme='sideways'), dict(scheme='rolling', window=10), dict(embargo=-1)):
        with pytest.raises(ValueError): WalkForwardPlan(**kw)
    assert origins_for(100, WalkForwardPlan(n_origins=1000))[0] == 59       # never before min_train bars
    with pytest.raises(ValueError, match='unique'):
        run_walk_forward(bundled_closes('AAPL'), [ModelSpec(SAMoSSA), ModelSpec(SAMoSSA)],
                         WalkForwardPlan(n_origins=10), progress=False)


def test_executors_agree():
    closes = bundled_closes('AAPL', 'KO', join='outer')
    plan = WalkForwardPlan(n_origins=80, refit_every=40)
    inline = run_walk_forward(closes, [ModelSpec(SAMoSSA)], plan, None, progress=False)
    with cf.ThreadPoolExecutor(2) as ex: threaded = run_walk_forward(closes, [ModelSpec(SAMoSSA)], plan, ex,
                                                                     progress=False)
    key = ['model', 'ticker', 'horizon', 'origin']
    pd.testing.assert_frame_equal(inline.forecasts.sort_values(key).reset_index(drop=True),
                                  threaded.forecasts.sort_values(key).reset_index(drop=True))
    assert inline.data_hashes == threaded.data_hashes and len(inline.data_hash) == 16


def test_dask_executor_agrees():
    from distributed import Client, LocalCluster
    from trading_workbench.signals.runner import DaskExecutor
    closes = bundled_closes('AAPL', 'KO', join='outer')
    plan = WalkForwardPlan(n_origins=60, refit_every=30)
    inline = run_walk_forward(closes, [ModelSpec(SAMoSSA)], plan, None, progress=False)
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        ex = DaskExecutor(client)
        on_dask = run_walk_forward(closes, [ModelSpec(SAMoSSA)], plan, ex, progress=False)
        ex.shutdown()
    key = ['model', 'ticker', 'horizon', 'origin']
    pd.testing.assert_frame_equal(inline.forecasts.sort_values(key).reset_index(drop=True),
                                  on_dask.forecasts.sort_values(key).reset_index(drop=True))


def test_store_roundtrip_and_gate(db_url):
    store = Store(db_url)
    closes = bundled_closes('AAPL', 'MSFT', join='outer')
    plan = WalkForwardPlan(n_origins=60, refit_every=30)
    r1 = validate(closes, [ModelSpec(SAMoSSA)], plan, 'v-1', store=store, reps=50, progress=False)
    r2 = validate(closes.iloc[:-10], [ModelSpec(SAMoSSA)], plan, 'v-2', store=store, reps=50, progress=False)
    assert len(load_forecasts(store, 'v-1')) == len(r1.run.forecasts)
    gate = latest_skill(store, model='samossa', horizon=1)
    assert set(gate.run_id) == {'v-2'} and set(gate.ticker) == {'*', 'AAPL', 'MSFT'}
    assert gate.dm_pvalue.between(0, 1).all() and gate.data_hash.iloc[0] == r2.run.data_hash != r1.run.data_hash
    # one transaction: a bad row leaves no trace of the run
    bad = r1.run; bad.forecasts.loc[0, 'mean'] = math.inf
    with pytest.raises(ValueError, match='nothing was written'): save_run(store, 'v-3', bad, r1.skill)
    with store.reader.connect() as c:
        assert c.execute(T['wf_runs'].select().where(T['wf_runs'].c.run_id == 'v-3')).first() is None
    store.close()


def test_skill_needs_the_random_walk():
    run = run_walk_forward(bundled_closes('AAPL'), [], WalkForwardPlan(n_origins=40), progress=False)
    fd = with_direction(run.forecasts)
    with pytest.raises(ValueError, match='random walk'): skill_table(fd[fd.model != 'random_walk'])


def test_twb_validate_end_to_end(settings, tmp_path, capsys):
    from trading_workbench.cli import main
    ini = tmp_path / 'settings.ini'
    ini.write_text((settings.root / 'settings.ini').read_text().replace('url = sqlite:///runs/workbench.db',
                                                                        f"url = sqlite:///{tmp_path / 'wb.db'}"))
    rc = main(['--settings', str(ini), 'validate', '--tickers', 'AAPL,MSFT', '--models', 'samossa,garch', '--origins',
               '60', '--refit-every', '30', '--reps', '50', '--quiet'])
    out = capsys.readouterr().out
    assert rc == 0 and 'samossa' in out and 'garch' in out and 'executed notebook' in out
    nb = out.split('executed notebook: ')[1].split()[0]
    assert '/runs/validation/' in nb and nb.endswith('.ipynb')
    store = Store(f"sqlite:///{tmp_path / 'wb.db'}")
    runs = store.runs('validation')
    assert list(runs.status) == ['ok'] and len(latest_skill(store, ticker='*')) == 4 * 2
    store.close()
    # a ticker the bundled data does not have: the run fails, says so, and is recorded as failed
    rc = main(['--settings', str(ini), 'validate', '--tickers', 'AAPL,NOPE', '--origins', '30', '--quiet'])
    assert rc == 1 and 'NOPE' in capsys.readouterr().err
    store = Store(f"sqlite:///{tmp_path / 'wb.db'}")
    assert sorted(store.runs('validation').status) == ['failed', 'ok']
    store.close()


def test_validation_notebook_has_one_parameters_cell():
    import nbformat
    from trading_workbench.cli import OPS_DIR
    nb = nbformat.read(OPS_DIR / 'validation.ipynb', 4)
    tagged = [c for c in nb.cells if 'parameters' in c.get('metadata', {}).get('tags', [])]
    assert len(tagged) == 1 and 'n_origins = 1000' in tagged[0].source and 'refit_every = 250' in tagged[0].source
