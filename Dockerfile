# One image for every ModelCI-e service; docker-compose.yml picks the command per service.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    MODELCI_METRICS_HOST=0.0.0.0 \
    MODELCI_LOG_FORMAT=json

WORKDIR /app
COPY pyproject.toml README.md ./
COPY schemas ./schemas
COPY services ./services
COPY strategies ./strategies
COPY infra ./infra
COPY benchmarks ./benchmarks
RUN pip install --no-cache-dir pip==25.3 && pip install --no-cache-dir .

RUN useradd --create-home --uid 10001 modelci
USER modelci
CMD ["modelci", "--help"]
