"""The ``tutoring`` command line: in-process for what it prints, as a real process for how it
starts, refuses and serves."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time

import httpx
import pytest

from app.cli import main
from app.platform.auth import TokenVerifier, mint_dev_token

SECRET = "cli-test-secret-that-is-long-enough-1234"
CONFIG = (
    "MONGODB_URL",
    "REDIS_URL",
    "AUTH_DEV_SECRET",
    "AUTH_JWKS_URL",
    "TUTORING_ENV",
    "TUTORING_ORGS",
    "STARTUP_TIMEOUT_SECONDS",
    "LOG_FORMAT",
    "LOG_LEVEL",
)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in CONFIG:
        monkeypatch.delenv(name, raising=False)


def _run(*args: str, timeout: float = 60, **env: str) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if k not in CONFIG}
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        env={**environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_writing_commands_refuse_the_in_memory_store(capsys):
    for command in (["install-pack", "--org", "acme"], ["seed-demo", "--org", "acme"]):
        assert main(command) == 2
        err = capsys.readouterr().err.strip()
        last = err.splitlines()[-1]  # after the in-memory store's own warning
        assert "in-memory store" in last and "MONGODB_URL" in last and "serve --org" in last
        assert "Traceback" not in err


def test_the_worker_refuses_the_in_memory_store():
    done = _run("worker")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1].startswith("`tutoring worker` needs the store")
    assert "Traceback" not in done.stderr


def test_dev_token(capsys, monkeypatch):
    assert main(["dev-token", "--org", "o", "--user", "u", "--role", "admin"]) == 2
    monkeypatch.setenv("AUTH_DEV_SECRET", SECRET)
    assert (
        main(["dev-token", "--org", "o", "--user", "u", "--role", "teacher", "--role", "guardian"])
        == 0
    )
    token = capsys.readouterr().out.strip().splitlines()[-1]
    identity = asyncio.run(TokenVerifier(dev_secret=SECRET).verify(token))
    assert identity.roles == frozenset({"teacher", "guardian"})


def test_dev_token_is_refused_in_production(capsys, monkeypatch):
    monkeypatch.setenv("AUTH_DEV_SECRET", SECRET)
    monkeypatch.setenv("TUTORING_ENV", "production")
    assert main(["dev-token", "--org", "o", "--user", "u", "--role", "admin"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "refused in production" in captured.err


def test_production_refuses_development_backends(capsys, monkeypatch):
    monkeypatch.setenv("TUTORING_ENV", "production")
    monkeypatch.setenv("AUTH_DEV_SECRET", SECRET)
    assert main(["serve"]) == 2
    err = capsys.readouterr().err
    assert "MONGODB_URL" in err and "REDIS_URL" in err and "AUTH_DEV_SECRET" in err


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"TUTORING_ENV": "prod"}, "TUTORING_ENV is invalid"),
        ({"AUTH_DEV_SECRET": "short"}, "AUTH_DEV_SECRET is invalid"),
        ({"LOG_FORMAT": "xml"}, "LOG_FORMAT is invalid"),
        ({"GRAPHQL_MAX_COST": "lots"}, "GRAPHQL_MAX_COST is invalid"),
        (
            {"MONGODB_URL": "mongodb://127.0.0.1:1", "STARTUP_TIMEOUT_SECONDS": "1"},
            "MongoDB at MONGODB_URL is unreachable after 1 s",
        ),
        (
            {"REDIS_URL": "redis://127.0.0.1:1/0", "STARTUP_TIMEOUT_SECONDS": "1"},
            "Redis at REDIS_URL is unreachable after 1 s",
        ),
        (
            {"AUTH_JWKS_URL": "http://127.0.0.1:1/jwks"},
            "AUTH_JWKS_URL needs AUTH_ISSUER and AUTH_AUDIENCE",
        ),
    ],
)
def test_start_up_failures_are_one_line_and_exit_2(env, expected):
    started = time.monotonic()
    done = _run("serve", "--port", "0", **env)
    assert done.returncode == 2, done.stderr
    assert time.monotonic() - started < 30
    assert "Traceback" not in done.stderr
    problem = [line for line in done.stderr.splitlines() if expected in line]
    assert len(problem) == 1, done.stderr
    assert problem[0] == done.stderr.strip().splitlines()[-1]  # the last word, on one line
    # Retry warnings before it are timestamped log lines, not a traceback.


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_installs_the_pack_into_the_named_organizations():
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k not in CONFIG}
    env.update(AUTH_DEV_SECRET=SECRET, TUTORING_ORGS="beta, gamma")
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "serve", "--port", str(port), "--org", "acme"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        for org in ("acme", "beta", "gamma"):
            token = mint_dev_token(SECRET, org=org, user="someone", roles=["teacher"])
            response = httpx.post(
                f"http://127.0.0.1:{port}/graphql",
                json={"query": "{ entityTypes { slug } }"},
                headers={"Authorization": f"Bearer {token}"},
            )
            assert len(response.json()["data"]["entityTypes"]) == 6, org
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    for org in ("acme", "beta", "gamma"):
        assert f"installed in '{org}'" in out
