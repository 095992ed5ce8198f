# Multi-stage: build a virtualenv with the pinned runtime dependencies, then copy it into a
# slim image that runs as an unprivileged user. Not built in CI (no Docker engine there).
FROM python:3.11-slim AS build
WORKDIR /src
COPY requirements.lock pyproject.toml ./
RUN python -m venv /venv && /venv/bin/pip install --no-cache-dir -r requirements.lock
COPY app ./app
COPY workers ./workers
RUN /venv/bin/pip install --no-cache-dir --no-deps .

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 tutoring
COPY --from=build /venv /venv
ENV PATH=/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    TUTORING_ENV=production
USER tutoring
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz')"
CMD ["tutoring", "serve", "--host", "0.0.0.0", "--port", "8000"]
