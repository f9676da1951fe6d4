"""The MLflow store as diffops connects to it.

connect_uri: MLflow gets an http(s) tracking URI without its `user:password@`; the credentials go to
  MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD, which MLflow sends as basic auth. Left in the URI,
  MLflow would print them ("View run ... at: http://user:password@...") and record them with the URI.
check_reachable: a tracking server that does not answer is one line within seconds, before any compute.
recorded_store: which store to reopen a run in that a stage output (model.json) recorded.
schema_lock: a fresh SQL store's tables are created by one process at a time (MLflow's and Optuna's
  schema creation races: two workers started together on a new store crashed one with "table
  experiments already exists").
"""
from __future__ import annotations

import contextlib
import os
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

import click

from ..utils.redact import MASK, redact


def is_http(uri: str) -> bool:
    return uri.startswith(("http://", "https://"))


def without_userinfo(uri: str) -> str:
    parts = urlsplit(uri)
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def connect_uri(uri: str) -> str:
    """The URI to hand MLflow: an http(s) URI's credentials moved into MLflow's credential variables."""
    parts = urlsplit(uri)
    if not is_http(uri) or parts.username is None:
        return uri
    os.environ["MLFLOW_TRACKING_USERNAME"] = unquote(parts.username)
    if parts.password is not None:
        os.environ["MLFLOW_TRACKING_PASSWORD"] = unquote(parts.password)
    return without_userinfo(uri)


# ----------------------------------------------------------------------------
# Reachable before any compute.

CHECK_TIMEOUT_S = 5.0


class TrackingUnavailable(click.ClickException):
    """A store diffops cannot use, in one line naming it (redacted) and what to do. A ClickException, so
    every command prints it as one line whichever stage raised it."""


def failure_reason(e: BaseException) -> str:
    """The root cause of a connection failure in a few words."""
    while e.__cause__ or e.__context__:
        e = e.__cause__ or e.__context__
    text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    for known in ("Connection refused", "timed out", "Name or service not known", "No route to host"):
        if known.lower() in text.lower():
            return known.lower()
    return redact(text)[:200]


def check_reachable(uri: str, timeout_s: float = CHECK_TIMEOUT_S) -> None:
    """An http(s) tracking server must answer one REST call within timeout_s (MLflow's own client retries a
    dead server for minutes before its first error); other stores are opened by MLflow itself."""
    if not is_http(uri):
        return
    from mlflow.utils.credentials import get_default_host_creds
    from mlflow.utils.rest_utils import http_request
    shown = redact(uri)
    try:
        response = http_request(get_default_host_creds(connect_uri(uri)), "/api/2.0/mlflow/experiments/search",
                                "GET", max_retries=0, backoff_factor=0, timeout=timeout_s, raise_on_status=False,
                                params={"max_results": 1})
    except Exception as e:          # noqa: BLE001 - any failure to get an answer is the same to the user
        raise TrackingUnavailable(
            f"MLflow tracking server {shown} does not answer ({failure_reason(e)}, {timeout_s:g} s timeout): start "
            f"it, or set MLFLOW_TRACKING_URI to a running one (unset it for the project's local store)") from None
    if response.status_code in (401, 403):
        raise TrackingUnavailable(f"MLflow tracking server {shown} refused the credentials (HTTP "
                                  f"{response.status_code}): set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD")
    if response.status_code != 200:
        raise TrackingUnavailable(f"{shown} answered HTTP {response.status_code} to MLflow's REST API: is "
                                  f"MLFLOW_TRACKING_URI the address of an MLflow tracking server?")


# ----------------------------------------------------------------------------
# The store of a recorded run.

def same_store(a: str, b: str) -> bool:
    """Whether two URIs name one store (credentials aside)."""
    pa, pb = urlsplit(a), urlsplit(b)
    return (pa.scheme, pa.hostname, pa.port, pa.path) == (pb.scheme, pb.hostname, pb.port, pb.path)


def recorded_store(recorded: str | None, current: str) -> str:
    """The URI to reopen a run in whose spec (model.json) recorded `recorded` while `current` is in force.

    The spec holds the URI redacted (no password on disk, where DVC versions it), so it cannot connect by
    itself. The same store as the current URI: the current URI, with its credentials. Another store: the
    recorded URI without the masked parts; its credentials then come from the environment, as each
    client reads them (MLFLOW_TRACKING_USERNAME/PASSWORD for a tracking server, PGPASSWORD or ~/.pgpass
    for a PostgreSQL store).
    """
    if not recorded or same_store(recorded, current):
        return current
    if MASK not in recorded:
        return recorded
    parts = urlsplit(recorded)
    netloc = parts.netloc
    if parts.password == MASK:
        netloc = f"{parts.username}@{netloc.rpartition('@')[2]}" if parts.username else netloc.rpartition("@")[2]
    query = "&".join(q for q in parts.query.split("&") if not q.endswith("=" + MASK))
    return urlunsplit(parts._replace(netloc=netloc, query=query))


# ----------------------------------------------------------------------------
# Creating a store's tables once.

SCHEMA_LOCK_KEY = 0x6469666f7073   # PostgreSQL advisory lock id ("difops"), shared by MLflow and Optuna stores


def sqlite_path(url: str) -> Path | None:
    """The database file of a sqlite:/// URL (None for other URLs and in-memory databases)."""
    if not url.startswith("sqlite:///"):
        return None
    path = url[len("sqlite:///"):].split("?", 1)[0]
    return Path(path) if path and path != ":memory:" else None


@contextlib.contextmanager
def schema_lock(url: str, timeout_s: float = 600.0):
    """Held while a store's tables are created or checked: a file lock beside a sqlite database (its
    folder is created), a session advisory lock in a PostgreSQL database (workers on many machines);
    nothing for other stores."""
    if (path := sqlite_path(url)) is not None:
        from filelock import FileLock
        path.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(f"{path}.lock", timeout=timeout_s):
            yield
    elif url.startswith("postgresql"):
        import sqlalchemy
        engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)
        try:
            with engine.connect() as conn:
                conn.execute(sqlalchemy.text("SELECT pg_advisory_lock(:key)"), {"key": SCHEMA_LOCK_KEY})
                try:
                    yield
                finally:
                    conn.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:key)"), {"key": SCHEMA_LOCK_KEY})
        finally:
            engine.dispose()
    else:
        yield


def create_tables(uri: str) -> None:
    """Create (or migrate) an MLflow SQL store's tables under schema_lock, before the process's first use
    of the store; tracking servers and file stores need nothing."""
    if is_http(uri) or "://" not in uri or uri.startswith("file:"):
        return
    import mlflow
    with schema_lock(uri):
        mlflow.MlflowClient(uri).search_experiments(max_results=1)     # MLflow creates the tables on opening
