"""Sign-in and per-request authentication, in process, against baselines measured in the same run.

    PYTHONPATH=. .venv/bin/python bench/bench_auth.py [--backend spatialite|postgis] [--attempts 30] [--requests 400]

1. A failed sign-in with a name that does not exist against one with a wrong password for a name
   that does (alternating, throttling set high so that neither is refused early): the two must
   take about the same time (ratio ≈ 1), or the answer time tells which names exist.
2. Resolving the caller of a request from its bearer token — the server-side session, the account
   and its roles read in one query — against what the stateless (JWT) token cost before: the
   account read by id with its roles (two queries). Both in process, a fresh database session each
   time, with the SQL statements each runs; and ``GET /api/v1/auth/me`` over HTTP for scale.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import tempfile
import time
import uuid


def _engine(backend: str, folder: str):
    from sqlalchemy import create_engine, text

    from patrol.db import create_db_engine
    from patrol.settings import AuthSettings, Settings, StorageSettings

    drop = None
    if backend == "spatialite":
        url = f"sqlite:///{folder}/bench.sqlite"
    else:
        admin = create_engine(
            "postgresql+psycopg://postgres@127.0.0.1:5432/postgres", isolation_level="AUTOCOMMIT"
        )
        name = f"mangrove_bench_auth_{uuid.uuid4().hex[:8]}"
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        url = admin.url.set(database=name).render_as_string(hide_password=False)

        def drop():
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    settings = Settings()
    settings.storage = StorageSettings(data_dir=folder, database_url=url)
    settings.auth = AuthSettings(
        secret_key="bench-" + "x" * 40,
        free_attempts=1000,
        address_free_attempts=10_000,
        lock_after_failures=10_000,
    )
    return create_db_engine(url, settings=settings), settings, drop


def _median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", choices=("spatialite", "postgis"), default="spatialite")
    parser.add_argument("--attempts", type=int, default=30)
    parser.add_argument("--requests", type=int, default=400)
    args = parser.parse_args()

    from fastapi.testclient import TestClient
    from sqlalchemy import event, select

    from api.app import create_app
    from patrol import migrate
    from patrol.accounts import Principal, RoleGrant, create_user, principal_for_secret
    from patrol.db import make_session_factory
    from patrol.models import Role, User
    from patrol.reference import load_reference

    folder = tempfile.mkdtemp(prefix="bench-auth-")
    engine, settings, drop = _engine(args.backend, folder)
    try:
        migrate.upgrade(engine)
        with make_session_factory(engine)() as session:
            load_reference(session)
            create_user(
                session, username="bench-member", password="mudflat-tide-5417", side="GD-LJ",
                grants=[RoleGrant(Role.PATROL_MEMBER, team="LJ-T-GQ")],
            )  # fmt: skip
            session.commit()
        client = TestClient(create_app(settings=settings, engine=engine))

        def attempt(username: str, password: str) -> float:
            start = time.perf_counter()
            response = client.post("/api/v1/auth/token", data={"username": username, "password": password})
            elapsed = time.perf_counter() - start
            assert response.status_code == 401, response.text
            return elapsed

        attempt("bench-member", "warm-up attempt")
        unknown, wrong = [], []
        for i in range(args.attempts):
            unknown.append(attempt(f"nobody-{i}", "not the password"))
            wrong.append(attempt("bench-member", "not the password"))

        start = time.perf_counter()
        token = client.post(
            "/api/v1/auth/token", data={"username": "bench-member", "password": "mudflat-tide-5417"}
        ).json()["access_token"]
        signed_in = time.perf_counter() - start
        headers = {"Authorization": f"Bearer {token}"}

        statements = []
        event.listen(engine, "before_cursor_execute", lambda *a, **k: statements.append(1))

        def timed(path: str, **kw) -> float:
            start = time.perf_counter()
            response = client.get(path, **kw)
            elapsed = time.perf_counter() - start
            assert response.status_code == 200, response.text
            return elapsed

        for _ in range(20):
            timed("/api/v1/auth/me", headers=headers)
        over_http = [timed("/api/v1/auth/me", headers=headers) for _ in range(args.requests)]

        # In process, each in a fresh database session as a request has: the caller read from the
        # server-side session (one query joining session, account and roles) against what a
        # stateless token cost, the account by id with its roles (selectin-loaded).
        factory = make_session_factory(engine)
        with factory() as session:
            user_id = session.scalar(select(User.id).where(User.username == "bench-member"))

        def by_session():
            with factory() as session:
                principal_for_secret(session, token, kind="token", channel="api", address=None)

        def by_user_id():
            with factory() as session:
                Principal.of(session.get(User, user_id))

        results = {}
        for name, call in (("session", by_session), ("user id", by_user_id)) * 2:  # warm, then measure
            samples = []
            statements.clear()
            for _ in range(args.requests):
                start = time.perf_counter()
                call()
                samples.append(time.perf_counter() - start)
            results[name] = (samples, len(statements) / args.requests)
    finally:
        engine.dispose()
        if drop:
            drop()

    print(f"machine: {platform.machine()}, Python {platform.python_version()}; backend {args.backend}")
    print(
        f"failed sign-in, unknown name:          median {_median_ms(unknown):7.1f} ms ({args.attempts} tries)"
    )
    print(
        f"failed sign-in, known name, wrong pw:  median {_median_ms(wrong):7.1f} ms ({args.attempts} tries)"
    )
    print(f"ratio unknown / known: {statistics.median(unknown) / statistics.median(wrong):.2f} (target ≈ 1)")
    print(f"successful sign-in (hash check, session row, audit entry): {signed_in * 1000:.1f} ms")
    print(
        f"GET /api/v1/auth/me with a bearer token, over HTTP in process: median {_median_ms(over_http):6.2f} ms"
    )
    (ours, ours_sql), (base, base_sql) = results["session"], results["user id"]
    print(
        f"caller from the server-side session:       median {_median_ms(ours):6.3f} ms, {ours_sql:.2f} SQL statements"
    )
    print(
        f"baseline, account by id + roles (JWT era): median {_median_ms(base):6.3f} ms, {base_sql:.2f} SQL statements"
    )
    print(f"ratio session / baseline: {statistics.median(ours) / statistics.median(base):.2f}")


if __name__ == "__main__":
    main()
