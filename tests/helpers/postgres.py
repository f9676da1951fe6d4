"""A real PostgreSQL for tests: the local server at 127.0.0.1:5432 when it answers, else a throwaway
cluster (initdb + pg_ctl on a free port, removed after the session); a fresh database per test.

Where neither is possible the tests that need PostgreSQL are skipped with the reason, unless
DIFFOPS_REQUIRE_POSTGRES=1 (CI sets it): then that is a failure.
"""
from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

LOCAL = ("127.0.0.1", 5432, "postgres")


@dataclass(frozen=True)
class Server:
    host: str
    port: int
    user: str

    def url(self, database: str, password: str | None = None) -> str:
        auth = f"{self.user}:{password}" if password else self.user
        return f"postgresql://{auth}@{self.host}:{self.port}/{database}"

    def execute(self, sql: str) -> None:
        import psycopg            # SQLAlchemy 2.1's default driver of postgresql:// URLs
        # autocommit: CREATE/DROP DATABASE cannot run in a transaction
        with psycopg.connect(host=self.host, port=self.port, user=self.user, dbname="postgres",
                             connect_timeout=5, autocommit=True) as conn:
            conn.execute(sql)


def answers(server: Server) -> str | None:
    """None when server accepts a connection, else why not."""
    try:
        server.execute("SELECT 1")
        return None
    except Exception as e:        # noqa: BLE001 - any failure means "use something else"
        return f"{server.host}:{server.port}: {str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pg_bin(name: str) -> str | None:
    found = shutil.which(name) or sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found if isinstance(found, str) else (found[-1] if found else None)


class Cluster:
    """A throwaway cluster: initdb (trust auth) into a temp folder, pg_ctl start on a free port.
    initdb refuses to run as root, so as root it runs as the `postgres` system user."""

    def __init__(self):
        initdb, self.pg_ctl = pg_bin("initdb"), pg_bin("pg_ctl")
        if not (initdb and self.pg_ctl):
            raise RuntimeError("no initdb/pg_ctl on PATH or under /usr/lib/postgresql/*/bin")
        self.as_user = []
        owner = None
        if os.geteuid() == 0:
            try:
                owner = pwd.getpwnam("postgres")
            except KeyError:
                raise RuntimeError("running as root and there is no `postgres` user to run initdb as") from None
            self.as_user = ["runuser", "-u", "postgres", "--"]
        self.dir = Path(tempfile.mkdtemp(prefix="diffops-pg-"))
        if owner is not None:
            os.chown(self.dir, owner.pw_uid, owner.pw_gid)
        self.server = Server("127.0.0.1", free_port(), "postgres")
        self._run([initdb, "-D", str(self.dir / "data"), "-U", "postgres", "--auth=trust", "-E", "UTF8"])
        self._run([self.pg_ctl, "-D", str(self.dir / "data"), "-l", str(self.dir / "log"), "-w", "-t", "60",
                   "-o", f"-p {self.server.port} -k {self.dir} -c listen_addresses=127.0.0.1", "start"])

    def _run(self, cmd):
        proc = subprocess.run(self.as_user + cmd, capture_output=True, text=True, timeout=120)
        if proc.returncode:
            raise RuntimeError(f"{Path(cmd[0]).name} failed: {(proc.stderr or proc.stdout).strip()[-500:]}")

    def stop(self):
        subprocess.run(self.as_user + [self.pg_ctl, "-D", str(self.dir / "data"), "-m", "immediate", "stop"],
                       capture_output=True, timeout=60)
        shutil.rmtree(self.dir, ignore_errors=True)


def unavailable(reason: str):
    """Skip, or fail when DIFFOPS_REQUIRE_POSTGRES=1."""
    if os.environ.get("DIFFOPS_REQUIRE_POSTGRES") == "1":
        pytest.fail(f"PostgreSQL is required (DIFFOPS_REQUIRE_POSTGRES=1) but unavailable: {reason}")
    pytest.skip(f"no PostgreSQL: {reason}")


@pytest.fixture(scope="session")
def postgres_server():
    """A PostgreSQL server for the session (see the module doc)."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        unavailable("the psycopg driver is not installed (pip install 'psycopg[binary]')")
    local = Server(*LOCAL)
    why = answers(local)
    if why is None:
        yield local
        return
    try:
        cluster = Cluster()
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as e:
        unavailable(f"{why}; and no throwaway cluster: {e}")
    try:
        yield cluster.server
    finally:
        cluster.stop()


@pytest.fixture
def postgres_db(postgres_server):
    """The URL of a fresh, uniquely named database, dropped after the test (with its connections)."""
    name = f"diffops_test_{uuid.uuid4().hex[:12]}"
    postgres_server.execute(f'CREATE DATABASE "{name}"')
    try:
        yield postgres_server.url(name)
    finally:
        postgres_server.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
