"""Shared fixtures: real SQLite files, a real PostgreSQL and a real MariaDB database per run,
a real SMTP server.

Tests marked `postgres` run against a fresh database on 127.0.0.1:5432, tests marked `mariadb`
against one on 127.0.0.1:3306. Locally they skip with a clear message when no server answers;
in CI (NOTIFIER_REQUIRE_POSTGRES=1, NOTIFIER_REQUIRE_MARIADB=1, or CI set) they fail.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
import uvicorn
from starlette.applications import Starlette

from notifier.config.settings import Secret, Settings
from notifier.db.engine import init_db, make_engine
from tests.conftest_smtp import smtp_server  # noqa: F401
from tests.shop import Shop
from tests.smtp_server import FaultySmtpServer

ROOT = Path(__file__).resolve().parent.parent
PG_ADMIN_URL = os.environ.get("NOTIFIER_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
MARIADB_ADMIN_URL = os.environ.get("NOTIFIER_TEST_MARIADB", "mysql://root@127.0.0.1:3306/")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the shipped rules.yaml and templates/ that a test may edit."""
    shutil.copy(ROOT / "rules.yaml", tmp_path / "rules.yaml")
    shutil.copytree(ROOT / "templates", tmp_path / "templates")
    return tmp_path


def _reachable(admin_url: str) -> str | None:
    try:
        engine = make_engine(admin_url)
        with engine.connect() as conn:
            conn.execute(sa.text("select 1"))
        engine.dispose()
        return None
    except Exception as exc:  # any failure means: no server to test against
        return str(exc).splitlines()[0]


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test run, dropped at the end."""
    problem = _reachable(PG_ADMIN_URL)
    if problem is not None:
        if os.environ.get("NOTIFIER_REQUIRE_POSTGRES") or os.environ.get("CI"):
            pytest.fail(f"PostgreSQL at 127.0.0.1:5432 is required here but not reachable: {problem}")
        pytest.skip(f"no PostgreSQL at 127.0.0.1:5432 ({problem}); these tests run in CI")
    name = f"notifier_test_{os.getpid()}_{secrets.token_hex(3)}"
    admin = make_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _fresh_postgres(url: str) -> sa.Engine:
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    return engine


@pytest.fixture(scope="session")
def mariadb_url() -> Iterator[str]:
    """A fresh MariaDB database for this test run, dropped at the end."""
    problem = _reachable(MARIADB_ADMIN_URL)
    if problem is not None:
        if os.environ.get("NOTIFIER_REQUIRE_MARIADB") or os.environ.get("CI"):
            pytest.fail(f"MariaDB at 127.0.0.1:3306 is required here but not reachable: {problem}")
        pytest.skip(f"no MariaDB at 127.0.0.1:3306 ({problem}); these tests run in CI")
    name = f"notifier_test_{os.getpid()}_{secrets.token_hex(3)}"
    _recreate_mariadb(name, drop=False)
    yield MARIADB_ADMIN_URL.rstrip("/") + f"/{name}"
    _recreate_mariadb(name, create=False)


def _recreate_mariadb(name: str, *, drop: bool = True, create: bool = True) -> None:
    """Drop (ending whatever is still connected to it, as PostgreSQL's WITH (FORCE) does) and
    create the database `name`."""
    admin = make_engine(MARIADB_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        if drop:
            query = "SELECT id FROM information_schema.processlist WHERE db = :name AND id <> CONNECTION_ID()"
            for (session,) in conn.execute(sa.text(query), {"name": name}).all():
                with contextlib.suppress(sa.exc.DBAPIError):  # it ended meanwhile
                    conn.execute(sa.text(f"KILL {int(session)}"))
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS `{name}`"))
        if create:
            conn.execute(sa.text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"))
    admin.dispose()


def _fresh_mariadb(url: str) -> sa.Engine:
    _recreate_mariadb(sa.engine.make_url(url).database or "")
    return make_engine(url)


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param("postgres", marks=pytest.mark.postgres),
        pytest.param("mariadb", marks=pytest.mark.mariadb),
    ]
)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database made by init-db: a SQLite file, then PostgreSQL, then MariaDB."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'shop.db'}"
        engine = make_engine(url)
    elif request.param == "mariadb":
        url = request.getfixturevalue("mariadb_url")
        engine = _fresh_mariadb(url)
    else:
        url = request.getfixturevalue("postgres_url")
        engine = _fresh_postgres(url)
    init_db(engine)
    engine.dispose()
    yield url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'shop.db'}"
    engine = make_engine(url)
    init_db(engine)
    engine.dispose()
    return url


@pytest.fixture
def engine(db_url: str) -> Iterator[sa.Engine]:
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def shop(engine: sa.Engine) -> Shop:
    return Shop(engine)


@pytest.fixture
def settings(db_url: str, project: Path, smtp_server: FaultySmtpServer) -> Settings:  # noqa: F811
    """Settings pointing at the test database, the test SMTP server and a copy of the rules."""
    return replace(
        Settings(),
        database_url=Secret(db_url),
        smtp_url=Secret(smtp_server.url),
        rules=project / "rules.yaml",
        templates=project / "templates",
        secret_key=Secret("test-secret"),
        smtp_timeout=timedelta(seconds=2),
        retry_backoff=timedelta(seconds=60),
    )


@pytest.fixture
def serve() -> Iterator[Callable[[Starlette], str]]:
    """Start apps under uvicorn on free ports in background threads; stop them cleanly."""
    running: list[tuple[uvicorn.Server, threading.Thread, socket.socket]] = []

    def start(app: Starlette) -> str:
        # Bind first and hand uvicorn the socket, so no other process can take the port between.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        config = uvicorn.Config(
            app, host="127.0.0.1", port=port, log_level="warning", log_config=None, ws="none"
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        running.append((server, thread, sock))
        deadline = time.monotonic() + 10
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "the web server did not start"
            time.sleep(0.01)
        return f"http://127.0.0.1:{port}"

    yield start
    for server, thread, sock in running:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()  # uvicorn serves on this very socket, so it is closed only now
        assert not thread.is_alive(), "the web server did not stop"
