"""The PostgreSQL the tests use (tests/helpers/postgres.py): a fresh database per test, a throwaway
cluster where no server answers, and no silent skip when CI requires PostgreSQL."""
import psycopg
import pytest

from ..helpers.postgres import Cluster, answers, unavailable


def tables(url: str) -> list[str]:
    with psycopg.connect(url, connect_timeout=5) as conn:
        return [r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]


def test_each_test_gets_a_fresh_database_that_is_dropped(postgres_server):
    from ..helpers import postgres
    gen = postgres.postgres_db.__wrapped__(postgres_server)     # the fixture's body, run twice by hand
    first = next(gen)
    with psycopg.connect(first, autocommit=True) as conn:
        conn.execute("CREATE TABLE t (x int)")
    assert tables(first) == ["t"]
    second = postgres.postgres_db.__wrapped__(postgres_server)
    assert next(second) != first and tables(first) == ["t"]
    for g in (gen, second):
        with pytest.raises(StopIteration):
            next(g)
    with pytest.raises(psycopg.OperationalError, match="does not exist"):
        tables(first)


def test_throwaway_cluster_starts_and_is_removed():
    try:
        cluster = Cluster()
    except RuntimeError as e:
        unavailable(str(e))
    try:
        assert answers(cluster.server) is None
    finally:
        cluster.stop()
    assert answers(cluster.server) is not None and not cluster.dir.exists()


def test_unavailable_skips_or_fails_when_required(monkeypatch):
    monkeypatch.delenv("DIFFOPS_REQUIRE_POSTGRES", raising=False)
    with pytest.raises(pytest.skip.Exception):
        unavailable("no server")
    monkeypatch.setenv("DIFFOPS_REQUIRE_POSTGRES", "1")
    with pytest.raises(pytest.fail.Exception, match="required"):
        unavailable("no server")
