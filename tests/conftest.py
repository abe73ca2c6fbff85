"""Shared fixtures. The store suite runs on SQLite and on a real PostgreSQL server whose URL comes from
TWB_TEST_PG_URL (`make test` and `.ci/run` start one with tools/postgres-up.sh). Without it the PostgreSQL
cases fail: they never skip."""
import os, uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / 'fixtures'

@pytest.fixture(scope='session')
def pg_url() -> str:
    "The test PostgreSQL server's URL (an admin database on it)."
    url = os.environ.get('TWB_TEST_PG_URL')
    if not url:
        pytest.fail('TWB_TEST_PG_URL is not set: run `make test` (it starts PostgreSQL via tools/postgres-up.sh) '
                    'or export TWB_TEST_PG_URL=postgresql://user@127.0.0.1:PORT/db')
    return url

def _pg_engine(url: str) -> sa.Engine:
    if url.startswith('postgresql://'): url = 'postgresql+psycopg://' + url[len('postgresql://'):]
    return sa.create_engine(url, isolation_level='AUTOCOMMIT')

@pytest.fixture
def fresh_pg_url(pg_url):
    "A new, empty PostgreSQL database for one test, dropped afterwards."
    name = f"twb_t_{uuid.uuid4().hex[:12]}"
    admin = _pg_engine(pg_url)
    with admin.connect() as c: c.exec_driver_sql(f'CREATE DATABASE {name}')
    url = sa.make_url(pg_url).set(database=name).render_as_string(hide_password=False)
    yield url
    with admin.connect() as c: c.exec_driver_sql(f'DROP DATABASE IF EXISTS {name} WITH (FORCE)')
    admin.dispose()

@pytest.fixture(params=['sqlite', 'postgresql'])
def db_url(request, tmp_path):
    "A fresh empty database URL, once on SQLite (a WAL file) and once on PostgreSQL."
    if request.param == 'sqlite': return f"sqlite:///{tmp_path / 'store.db'}"
    return request.getfixturevalue('fresh_pg_url')

@pytest.fixture
def settings(tmp_path):
    "The repository's settings with the store in a temporary SQLite file."
    from trading_workbench.core.config import Settings
    return Settings.load(ROOT / 'settings.ini', env={'TWB_STORE_URL': f"sqlite:///{tmp_path / 'workbench.db'}"})

@pytest.fixture
def clock():
    "A replay clock on the morning after the bundled data's last session (a file may override it)."
    from trading_workbench.core.clock import FixedClock
    return FixedClock('2018-02-08 12:00')

@pytest.fixture
def store(tmp_path, clock):
    "A fresh SQLite store in a temporary folder, on the `clock` fixture (a file may override it)."
    from trading_workbench.store.db import Store
    s = Store(f'sqlite:///{tmp_path}/wb.db', clock=clock)
    yield s
    s.close()
