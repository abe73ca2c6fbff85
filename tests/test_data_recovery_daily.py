"""The issue's own scenario, end to end through `twb run daily`: one ticker whose CSV holds 1e308 prices used to fail
the whole day (`BadRowError ... rolling_std_5 is infinite`) and every later day. Now it is quarantined, the good
tickers are traded, and the next day runs too."""
import os, sqlite3, subprocess, sys
from pathlib import Path

from ollama_server import refused_url
from trading_workbench.data.sources import BundledSource

ROOT = Path(__file__).resolve().parents[1]


def test_poisoned_csv_ticker_does_not_fail_the_day_or_the_next(tmp_path):
    (tmp_path / 'settings.ini').write_text((ROOT / 'settings.ini').read_text())
    csv = tmp_path / 'csv'; csv.mkdir()
    kox = BundledSource().history('KO').astype('float64')
    kox.loc['2017-11-01':, ['high', 'close']] = 1e308                 # a broken export: every bar from November on
    kox.to_csv(csv / 'KOX.csv')
    env = {k: v for k, v in os.environ.items() if not k.startswith('TWB_')}
    env.update(TWB_DATA_SOURCES='bundled, csv', TWB_DATA_CSV_DIR=str(csv), TWB_LLM_HOST=refused_url())
    twb = [str(Path(sys.executable).parent / 'twb'), '--settings', str(tmp_path / 'settings.ini')]
    for day, extra in (('2018-02-06', []), ('2018-02-07', ['--dry-run'])):
        r = subprocess.run([*twb, 'run', 'daily', '--date', day, '--tickers', 'AAPL,KOX,MSFT', '--quiet', *extra],
                           capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
        assert r.returncode == 0, r.stderr[-3000:]
    with sqlite3.connect(tmp_path / 'runs' / 'workbench.db') as c:
        statuses = [s for s, in c.execute("select status from runs order by started_at")]
        traded = {t for t, in c.execute("select distinct ticker from signals")}
        kox_rows = c.execute("select count(*) from prices where ticker = 'KOX'").fetchone()[0]
        alerts = [m for m, in c.execute("select message from alerts where source = 'data.quarantine'")]
    # partial: a model failed somewhere, never 'failed'
    assert len(statuses) == 2 and set(statuses) <= {'ok', 'partial'}
    assert traded == {'AAPL', 'MSFT'} and kox_rows == 0
    assert len(alerts) == 1 and 'KOX quarantined' in alerts[0] and 'absurd_magnitude' in alerts[0]
    q = subprocess.run([*twb, 'data', 'quarantine'], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60)
    assert q.returncode == 0 and q.stdout.startswith('KOX')
