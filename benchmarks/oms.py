"""Order-management throughput: orders per second through pre-trade checks, the journal and PaperBroker,
against a baseline of the bare PaperBroker (same orders, no checks, no journal), measured in the same run;
plus the median and p99 latency of the pre-trade checks alone.

Run: .venv/bin/python benchmarks/oms.py
"""
from __future__ import annotations
import statistics, tempfile, time
from pathlib import Path
from trading_workbench.core.config import Settings
from trading_workbench.core.clock import FixedClock
from trading_workbench.core.types import Order
from trading_workbench.execution.broker import SyncBroker
from trading_workbench.execution.paper import PaperBroker
from trading_workbench.data.sources import BundledSource
load_bundled = BundledSource().history
from trading_workbench.execution.orders import OrderManager, pre_trade_checks, limit_for

ROOT = Path(__file__).parents[1]
# the benchmark sends more orders than one day's limit allows
SETTINGS = Settings.from_text((ROOT / 'settings.ini').read_text(), env={'TWB_RISK_MAX_DAILY_TRADES': '100000'}, root=ROOT)
TICKERS = ['AAPL', 'MSFT', 'JPM', 'XOM', 'KO', 'PG', 'PEP', 'WMT', 'INTC', 'CSCO']
PRICES = {t: float(load_bundled(t).close.iloc[-1]) for t in TICKERS}
N = 300


def orders(tag):
    for i in range(N):
        t = TICKERS[i % len(TICKERS)]
        side = 'BUY' if (i // len(TICKERS)) % 2 == 0 else 'SELL'
        yield Order(f'{tag}-{i}', t, side, 5, limit_price=limit_for(side, PRICES[t]), run_id=tag)


def setup(tmp, name):
    from trading_workbench.store.db import Store
    clock = FixedClock('2018-02-07 21:00')
    store = Store(f'sqlite:///{tmp}/{name}.db', clock=clock)
    sb = SyncBroker(PaperBroker(store, SETTINGS, clock))
    sb.connect(); sb.run(sb.broker.mark(PRICES))
    return clock, store, sb


def main():
    tmp = tempfile.mkdtemp()
    _, _, base = setup(tmp, 'baseline')
    t0 = time.perf_counter()
    for o in orders('base'): base.submit(o)
    base_rate = N / (time.perf_counter() - t0)
    base.close()

    clock, store, sb = setup(tmp, 'oms')
    oms = OrderManager(sb, store, SETTINGS, clock)
    assert oms.start().ok
    t0 = time.perf_counter()
    res = [oms.manage_order_lifecycle(o, PRICES[o.ticker]) for o in orders('oms')]
    oms_rate = N / (time.perf_counter() - t0)
    assert all(r.status == 'COMPLETE' for r in res), {r.status for r in res}

    ctx = oms.context(PRICES)
    lat = []
    for o in orders('chk'):
        t = time.perf_counter(); pre_trade_checks(o, ctx, SETTINGS.risk, SETTINGS.broker.slippage_bps); lat.append(time.perf_counter() - t)
    lat.sort()
    med, p99 = statistics.median(lat) * 1e6, lat[int(0.99 * len(lat)) - 1] * 1e6
    sb.close()
    print(f'baseline   bare PaperBroker.submit          : {base_rate:8.1f} orders/s')
    print(f'oms        checks + journal + paper + recon : {oms_rate:8.1f} orders/s   ratio vs baseline {oms_rate / base_rate:.3f}')
    print(f'pre-trade checks alone                      : median {med:.1f} us, p99 {p99:.1f} us  '
          f'(= {1e6 / med / base_rate:.0f}x the baseline order rate)')


if __name__ == '__main__':
    main()
