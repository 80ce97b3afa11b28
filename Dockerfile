# One image for the API (`ragql serve`) and the workers (`ragql worker`).
FROM python:3.11-slim-bookworm AS base
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 \
    PIP_NO_CACHE_DIR=1 DATA_DIR=/data
RUN apt-get update && apt-get install -y --no-install-recommends curl nodejs npm \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
# CPU-only torch first, so nothing pulls a CUDA build.
RUN pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu
COPY pyproject.toml README.md ./
COPY gql_server gql_server
COPY workers workers
COPY migrations migrations
RUN pip install -e .
COPY schema.graphql ./
COPY frontend frontend
RUN if [ -f frontend/package.json ]; then cd frontend && npm ci --no-audit --no-fund && npm run build \
      && rm -rf node_modules; fi
RUN useradd --create-home ragql && mkdir -p /data && chown ragql /data
USER ragql
EXPOSE 8000
HEALTHCHECK CMD curl -fsS http://127.0.0.1:8000/healthz || exit 1
CMD ["ragql", "serve", "--host", "0.0.0.0", "--port", "8000"]
