"""A PostgreSQL cluster of a test's own (Debian's postgresql-common tools), to restart and stop at
will without touching the shared cluster at 5432. Always dropped afterwards, test failed or not;
clusters left by a run that was itself killed are dropped by the next one."""

from __future__ import annotations

import os
import re
import subprocess
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg

from utils.service import free_port

PREFIX = "mangrove_fault_"


# The cluster tools run as root (CI, scripts/test) or through password-less sudo.
AS_ROOT = [] if os.geteuid() == 0 else ["sudo", "-n"]


def _run(*args: str, timeout: float = 120) -> str:
    done = subprocess.run([*AS_ROOT, *args], capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({done.returncode}): {done.stderr or done.stdout}")
    return done.stdout


def postgres_version() -> str:
    """The newest installed major version that has PostGIS (what scripts/setup installs)."""
    versions = sorted((p.name for p in Path("/usr/lib/postgresql").iterdir() if p.name.isdigit()), key=int)
    with_postgis = [
        v for v in versions if Path(f"/usr/share/postgresql/{v}/extension/postgis.control").exists()
    ]
    if not with_postgis:
        raise RuntimeError("no PostgreSQL with PostGIS installed: run scripts/setup --test")
    return with_postgis[-1]


def _drop_orphans(version: str) -> None:
    """Drop clusters of earlier runs whose test process no longer exists."""
    for name in os.listdir(f"/etc/postgresql/{version}"):
        match = re.fullmatch(PREFIX + r"(\d+)_\w+", name)
        if match and not Path(f"/proc/{match.group(1)}").exists():
            subprocess.run([*AS_ROOT, "pg_dropcluster", "--stop", version, name], capture_output=True)


@dataclass
class Cluster:
    version: str
    name: str
    port: int

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def ctl(self, action: str, *options: str) -> None:
        _run("pg_ctlcluster", "--skip-systemctl-redirect", *options, self.version, self.name, action)

    def restart(self) -> None:
        self.ctl("restart", "--mode", "fast")  # fast: connections are cut, as a crash or upgrade does

    def stop(self) -> None:
        self.ctl("stop", "--mode", "fast")

    def start(self) -> None:
        self.ctl("start")

    def ready(self) -> bool:
        try:
            with psycopg.connect(host="127.0.0.1", port=self.port, user="postgres", connect_timeout=2):
                return True
        except psycopg.OperationalError:
            return False

    def create_postgis_database(self, database: str) -> str:
        with psycopg.connect(host="127.0.0.1", port=self.port, user="postgres", autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{database}"')
        with psycopg.connect(
            host="127.0.0.1", port=self.port, user="postgres", dbname=database, autocommit=True
        ) as conn:
            conn.execute("CREATE EXTENSION postgis")
        return self.url(database)


@contextmanager
def own_cluster(label: str = "test"):
    """A new, started cluster on a free port with trust authentication on 127.0.0.1."""
    if not label.isidentifier():
        raise ValueError("the cluster label must be a plain word")
    version = postgres_version()
    _drop_orphans(version)
    cluster = Cluster(version, f"{PREFIX}{os.getpid()}_{label}", free_port())
    assert cluster.name != "main" and cluster.port != 5432  # never the shared cluster
    _run("pg_createcluster", version, cluster.name, "--port", str(cluster.port), "--", "--auth=trust")
    try:
        cluster.start()
        deadline = time.monotonic() + 30
        while not cluster.ready():
            if time.monotonic() > deadline:
                raise RuntimeError(f"cluster {cluster.name} did not start")
            time.sleep(0.1)
        yield cluster
    finally:
        subprocess.run(
            [*AS_ROOT, "pg_dropcluster", "--stop", version, cluster.name], capture_output=True, timeout=120
        )
