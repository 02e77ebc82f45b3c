"""HTTPS on a station's network: scripts/station-cert makes a CA and a server certificate for the
names and addresses given; `mangrove serve --certfile --keyfile` serves over TLS with them (a
client trusting only that CA gets its answers); a half or mismatched pair is refused by name."""

from __future__ import annotations

import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from api.cli import main as cli
from patrol.settings import get_settings

WORKTREE = Path(__file__).resolve().parents[2]
STATION_CERT = WORKTREE / "scripts" / "station-cert"


@pytest.fixture(scope="module")
def certs(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("tls") / "station"
    done = subprocess.run(
        [str(STATION_CERT), "--dir", str(folder), "localhost", "127.0.0.1"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert f"station CA:         {folder}/ca.crt" in done.stdout
    assert "Certificate Trust Settings" in done.stdout and "Install a certificate" in done.stdout
    return folder


def test_the_certificate_is_for_the_names_given_signed_by_the_station_ca(certs):
    text = subprocess.run(
        ["openssl", "x509", "-in", str(certs / "server.crt"), "-noout", "-text"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert "DNS:localhost, IP Address:127.0.0.1" in text
    assert "TLS Web Server Authentication" in text and "CA:FALSE" in text
    info = ssl._ssl._test_decode_cert(str(certs / "server.crt"))
    start = ssl.cert_time_to_seconds(info["notBefore"])
    end = ssl.cert_time_to_seconds(info["notAfter"])
    assert (end - start) / 86400 <= 825  # iOS refuses longer
    assert oct((certs / "ca.key").stat().st_mode & 0o777) == "0o600"


def test_a_second_run_keeps_the_ca(certs):
    ca = (certs / "ca.crt").read_bytes()
    done = subprocess.run(
        [str(STATION_CERT), "--dir", str(certs), "localhost"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0 and "using the station CA" in done.stdout
    assert (certs / "ca.crt").read_bytes() == ca
    # Back to the names the other tests use.
    subprocess.run(
        [str(STATION_CERT), "--dir", str(certs), "localhost", "127.0.0.1"], check=True, capture_output=True
    )


def test_station_cert_refuses_a_name_that_is_neither_host_nor_address(tmp_path):
    done = subprocess.run(
        [str(STATION_CERT), "--dir", str(tmp_path / "t"), "bad name!"], capture_output=True, text=True
    )
    assert done.returncode == 2 and "neither a host name nor an IP address" in done.stderr


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_over_https_answers_a_client_that_trusts_the_station_ca(configured, certs, tmp_path):
    port = free_port()
    log_path = tmp_path / "serve.log"
    with open(log_path, "wb") as log:
        child = subprocess.Popen(
            [sys.executable, "-m", "api.cli", "serve", "--patrol-days", "0", "--port", str(port),
             "--certfile", str(certs / "server.crt"), "--keyfile", str(certs / "server.key")],
            cwd=WORKTREE, env=os.environ.copy(), stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 90
            while True:
                assert child.poll() is None, log_path.read_text()
                assert time.monotonic() < deadline, "no answer over HTTPS within 90 s"
                try:
                    response = httpx.get(
                        f"https://127.0.0.1:{port}/api/v1/health",
                        verify=ssl.create_default_context(cafile=certs / "ca.crt"),
                        timeout=2,
                    )
                    break
                except httpx.ConnectError as exc:
                    assert "CERTIFICATE_VERIFY_FAILED" not in str(exc), exc
                    time.sleep(0.3)
                except httpx.TransportError:
                    time.sleep(0.3)
            assert response.status_code == 200 and response.json()["status"] == "ok"
            with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                httpx.get(f"https://127.0.0.1:{port}/api/v1/health", timeout=5)  # the system's CAs only
        finally:
            child.terminate()
            code = child.wait(timeout=30)
    assert code in (0, -signal.SIGTERM)
    printed = log_path.read_text()
    assert f"https://127.0.0.1:{port}/" in printed and "http://" not in printed


def run(args) -> int:
    try:
        return cli(args)
    except SystemExit as exc:
        return exc.code


def test_serve_refuses_half_a_pair_a_missing_file_and_a_key_of_another_certificate(
    configured, certs, tmp_path, capsys, monkeypatch
):
    other = tmp_path / "other.key"
    subprocess.run(["openssl", "genrsa", "-out", str(other), "2048"], check=True, capture_output=True)
    cases = [
        (["--certfile", str(certs / "server.crt")], "--certfile given without --keyfile"),
        (["--keyfile", str(certs / "server.key")], "--keyfile given without --certfile"),
        (
            ["--certfile", str(tmp_path / "nope.crt"), "--keyfile", str(certs / "server.key")],
            "does not exist",
        ),
        (
            ["--certfile", str(certs / "server.crt"), "--keyfile", str(other)],
            "does not belong to the certificate",
        ),
        (
            ["--certfile", str(certs / "ca.srl"), "--keyfile", str(certs / "server.key")],
            "give a PEM certificate",
        ),
    ]
    for args, words in cases:
        assert run(["serve", "--port", "1", *args]) == 2, args
        assert words in capsys.readouterr().err, args
    # The same rules for the settings.
    monkeypatch.setenv("MANGROVE_TLS_CERTFILE", str(certs / "server.crt"))
    get_settings.cache_clear()
    assert run(["serve", "--port", "1"]) == 2
    assert "--certfile given without --keyfile" in capsys.readouterr().err
