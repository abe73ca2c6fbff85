"""SignalRouter and FeatureFlags on a real store (SQLite file shared by two 'processes'): flag filtering, priority
order, the LLM-only backward compatibility, run-time toggles seen within a minute, every toggle logged and stored."""
import logging
from datetime import datetime, timezone

import pytest
from hypothesis import given, settings as hsettings, strategies as st

from trading_workbench.core.clock import FixedClock
from trading_workbench.core.types import Provenance, Signal
from trading_workbench.signals.router import FeatureFlags, FlagError, SignalRouter
from trading_workbench.store.db import Store

MODELS = ('samossa', 'sarimax', 'garch', 'mssa_rl', 'llm')
ALL_ON = {f'enable_{m}': True for m in MODELS}
AS_OF = datetime(2018, 2, 7, 21, tzinfo=timezone.utc)


def sig(ticker, model, conf, risk, action='HOLD'):
    return Signal(ticker, action, conf, risk, 0.0, 5, 100.0, AS_OF, Provenance(model, '1'))


def legacy_llm_only_router(signals, flags):
    "The plan's router with only enable_llm on (the behaviour downstream consumers were built against)."
    enabled = [s for s in signals if s.model == 'llm']
    ordered = sorted(enabled, key=lambda s: s.confidence * 0.6 + (1 - s.risk_score) * 0.4, reverse=True)
    return ordered, (ordered[0] if ordered else None), (ordered[1] if len(ordered) > 1 else None)


@pytest.fixture
def store(tmp_path):
    s = Store(f"sqlite:///{tmp_path / 'flags.db'}", clock=FixedClock(AS_OF))
    yield s
    s.close()


unit = st.floats(0, 1, allow_nan=False)
signal_lists = st.lists(st.builds(sig, st.sampled_from(['AAPL', 'MSFT', 'JPM']),
                                  st.sampled_from(MODELS + ('ensemble',)), unit, unit),
                        max_size=25)
flag_sets = st.fixed_dictionaries({f'enable_{m}': st.booleans() for m in MODELS})


class _NoStore:
    "A store with no toggles (for the pure routing properties)."
    def controls(self, prefix=''): return {}


@hsettings(max_examples=200, deadline=None)
@given(signal_lists, flag_sets)
def test_routing_properties(signals, flags):
    router = SignalRouter(FeatureFlags(flags, _NoStore(), FixedClock(AS_OF)), FixedClock(AS_OF))
    b = router.route(signals)
    allowed = {m for m in MODELS if flags[f'enable_{m}']}
    # exactly the enabled ones
    assert sorted(map(id, b.signals)) == sorted(id(s) for s in signals if s.model in allowed)
    pr = [s.priority() for s in b.signals]
    assert pr == sorted(pr, reverse=True)
    assert b.primary is (b.signals[0] if b.signals else None) and b.fallback is (b.signals[1] if len(b.signals) > 1
                                                                                 else None)
    if b.primary: assert b.primary.priority() == max(0.6 * s.confidence + 0.4 * (1 - s.risk_score) for s in b.signals)
    assert b.metadata['total_signals'] == len(b.signals) and b.metadata['received'] == len(signals)
    assert sum(b.metadata['filtered_out'].values()) == len(signals) - len(b.signals)


@hsettings(max_examples=200, deadline=None)
@given(signal_lists)
def test_llm_only_is_backward_compatible(signals):
    flags = {f'enable_{m}': m == 'llm' for m in MODELS}
    b = SignalRouter(FeatureFlags(flags, _NoStore(), FixedClock(AS_OF)), FixedClock(AS_OF)).route(signals)
    assert (list(b.signals), b.primary, b.fallback) == legacy_llm_only_router(signals, flags)


def test_priority_formula_and_ties():
    a, b, c = sig('AAPL', 'llm', 0.9, 0.9), sig('AAPL', 'garch', 0.5, 0.1), sig('AAPL', 'sarimax', 0.5, 0.1)
    bundle = SignalRouter(FeatureFlags(ALL_ON, _NoStore(), FixedClock(AS_OF)), FixedClock(AS_OF)).route([a, b, c])
    # 0.6*0.9 + 0.4*0.1 = 0.58 < 0.6*0.5 + 0.4*0.9 = 0.66; equal priorities keep their input order
    assert [s.model for s in bundle.signals] == ['garch', 'sarimax', 'llm']
    assert (bundle.primary.model, bundle.fallback.model) == ('garch', 'sarimax')


def test_toggle_is_seen_within_a_minute_by_another_process(store, caplog):
    ops_clock, run_clock = FixedClock(AS_OF), FixedClock(AS_OF)
    ops = FeatureFlags(ALL_ON, store, ops_clock)                                # the dashboard / CLI
    run_store = Store(store.url, clock=run_clock)                                # the daily run's own connection
    router = SignalRouter(FeatureFlags(ALL_ON, run_store, run_clock), run_clock)
    signals = [sig('AAPL', m, 0.6, 0.3) for m in MODELS]
    assert len(router.route(signals).signals) == 5
    with caplog.at_level(logging.INFO, logger='trading_workbench'):
        for m in ('samossa', 'sarimax', 'garch', 'mssa_rl'): ops.set(f'enable_{m}', False, by='ops')
    assert sum('feature flag enable_' in r.getMessage() and 'by ops' in r.getMessage() for r in caplog.records) == 4
    run_clock.advance(59)
    assert len(router.route(signals).signals) == 5                               # still the cached flags
    run_clock.advance(1)
    b = router.route(signals)
    assert [s.model for s in b.signals] == ['llm'] and b.primary.model == 'llm' and b.fallback is None
    assert b.metadata['feature_flags']['enable_garch'] is False and b.metadata['routing_timestamp'] == run_clock.now()
    # stored: controls survive a restart, and each toggle left an info alert
    assert store.controls('flag.') == {f'flag.enable_{m}': False for m in ('garch', 'mssa_rl', 'samossa', 'sarimax')}
    alerts = store.alerts()
    assert (alerts['source'] == 'flags').sum() == 4 and (alerts['severity'] == 'info').all()
    assert FeatureFlags(ALL_ON, Store(store.url), FixedClock(AS_OF)).enabled_models() == ['llm']
    run_store.close()


def test_toggle_restores_llm_only_routing_and_back(store):
    clock = FixedClock(AS_OF)
    flags = FeatureFlags(ALL_ON, store, clock)
    router = SignalRouter(flags, clock)
    signals = [sig('AAPL', m, 0.5 + 0.05 * i, 0.3) for i, m in enumerate(MODELS)]
    for m in MODELS[:-1]: flags.set(f'enable_{m}', False)
    only = router.route(signals)
    assert (list(only.signals), only.primary, only.fallback) == legacy_llm_only_router(signals, None)
    for m in MODELS[:-1]: flags.set(f'enable_{m}', True)
    assert len(router.route(signals).signals) == 5


def test_bad_flags_are_typed_errors(store):
    flags = FeatureFlags(ALL_ON, store, FixedClock(AS_OF))
    with pytest.raises(FlagError, match="flag 'enable_gpt': unknown"): flags.set('enable_gpt', True)
    with pytest.raises(FlagError, match='expected True/False'): flags.set('enable_llm', 'yes')
    store.set_control('flag.enable_llm', 1, by='a typo in SQL')
    with pytest.raises(FlagError,
                       match="control 'flag.enable_llm': expected true/false, got 1"): flags.current(force=True)
    store.set_control('flag.some_other_component', 'x')       # not ours: ignored
    store.set_control('flag.enable_llm', False)
    assert flags.current(force=True)['enable_llm'] is False
    with pytest.raises(FlagError, match='must be booleans'): FeatureFlags({'enable_llm': 'true'}, store,
                                                                          FixedClock(AS_OF))


def test_unflagged_models_are_not_routed_and_by_ticker(store, settings):
    flags = FeatureFlags.from_settings(settings, store, FixedClock(AS_OF))
    assert flags.current() == settings.flags_dict()
    router = SignalRouter(flags, FixedClock(AS_OF))
    signals = [sig('AAPL', 'ensemble', 0.99, 0.0), sig('AAPL', 'llm', 0.6, 0.3), sig('MSFT', 'garch', 0.6, 0.3),
               sig('JPM', 'ensemble', 0.9, 0.1)]
    by = router.route_by_ticker(signals)
    assert list(by) == ['AAPL', 'MSFT', 'JPM']
    assert by['AAPL'].primary.model == 'llm' and by['AAPL'].metadata['filtered_out'] == {'ensemble': 1}
    assert by['JPM'].primary is None and by['JPM'].signals == ()
    with pytest.raises(TypeError, match='signals\\[0\\]: expected a Signal'): router.route([{'ticker': 'AAPL'}])
