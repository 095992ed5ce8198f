"""The ``tutoring`` command line, run in-process."""

from __future__ import annotations

import pytest

from app.cli import main
from app.platform.auth import TokenVerifier

SECRET = "cli-test-secret-that-is-long-enough-1234"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in ("MONGODB_URL", "REDIS_URL", "AUTH_DEV_SECRET", "AUTH_JWKS_URL", "TUTORING_ENV"):
        monkeypatch.delenv(name, raising=False)


def test_install_pack_reports_six_types(capsys):
    assert main(["install-pack", "--org", "acme"]) == 0
    out = capsys.readouterr().out
    assert "teacher, student, guardian, session, payment, entitlement" in out


def test_seed_demo_installs_seeds_and_prints_tokens(capsys, monkeypatch):
    monkeypatch.setenv("AUTH_DEV_SECRET", SECRET)
    assert main(["seed-demo", "--org", "acme"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "demo data added" in lines
    token_lines = [line for line in lines if line.count(".") == 2 and " " in line]
    assert len(token_lines) == 5  # admin, two teachers, two guardians
    identity = TokenVerifier(dev_secret=SECRET).verify(token_lines[0].split()[-1])
    assert identity.organization_id == "acme" and identity.roles == frozenset({"admin"})


def test_dev_token(capsys, monkeypatch):
    assert main(["dev-token", "--org", "o", "--user", "u", "--role", "admin"]) == 2
    monkeypatch.setenv("AUTH_DEV_SECRET", SECRET)
    assert (
        main(["dev-token", "--org", "o", "--user", "u", "--role", "teacher", "--role", "guardian"])
        == 0
    )
    token = capsys.readouterr().out.strip().splitlines()[-1]
    identity = TokenVerifier(dev_secret=SECRET).verify(token)
    assert identity.roles == frozenset({"teacher", "guardian"})


def test_production_refuses_development_backends(capsys, monkeypatch):
    monkeypatch.setenv("TUTORING_ENV", "production")
    monkeypatch.setenv("AUTH_DEV_SECRET", SECRET)
    assert main(["install-pack", "--org", "acme"]) == 2
    err = capsys.readouterr().err
    assert "MONGODB_URL" in err and "REDIS_URL" in err and "AUTH_DEV_SECRET" in err
