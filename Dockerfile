# One image for every ModelCI-e service; docker-compose.yml picks the command per service.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    MODELCI_METRICS_HOST=0.0.0.0 \
    MODELCI_LOG_FORMAT=json \
    NUMBA_CACHE_DIR=/app/.numba-cache

WORKDIR /app
COPY pyproject.toml README.md ./
COPY schemas ./schemas
COPY services ./services
COPY strategies ./strategies
COPY infra ./infra
COPY benchmarks ./benchmarks
RUN pip install --no-cache-dir pip==25.3 && pip install --no-cache-dir .

RUN useradd --create-home --uid 10001 modelci
# The drift service's compiled kernels, compiled once here (numba needs the folder writable).
RUN python -m services.drift.scan && chown -R modelci /app/.numba-cache
USER modelci
CMD ["modelci", "--help"]
