# ragql — the two commands: `make serve` and `make test`. Both run `make install` first,
# which is idempotent and quick when nothing changed.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: install install-python install-frontend install-system serve test test-python test-frontend test-http-audit test-slow lint format schema bench clean

install: install-python install-frontend

# torch first, pinned to the CPU build on this machine's disk: anything that lets pip
# resolve torch itself would download a multi-GB CUDA build.
$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.torch: | $(BIN)/python
	$(BIN)/pip install --quiet torch==2.13.0
	touch $@

$(VENV)/.installed: pyproject.toml $(VENV)/.torch
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $@

install-python: $(VENV)/.installed

# The web app, when present: npm ci from the committed lock file, then a production build.
install-frontend:
	@if [ -f frontend/package.json ]; then \
	  $(MAKE) --no-print-directory frontend/dist/index.html; \
	fi

frontend/node_modules/.installed: frontend/package.json frontend/package-lock.json
	cd frontend && npm ci --no-audit --no-fund --loglevel=error
	touch $@

FRONTEND_SOURCES := $(shell find frontend/src frontend/index.html frontend/vite.config.ts frontend/codegen.ts frontend/vitest.config.ts frontend/package.json frontend/tsconfig*.json -type f -not -path "frontend/src/gql/*" 2>/dev/null)
frontend/dist/index.html: frontend/node_modules/.installed $(FRONTEND_SOURCES) schema.graphql
	cd frontend && npm run --silent build

# Debian packages the browser tests need (Chromium). Installed only when missing.
install-system:
	@if [ -f frontend/package.json ] && [ ! -x /usr/bin/chromium ]; then \
	  echo "installing Debian chromium for the browser tests"; \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	  else sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; fi; \
	fi
	@if [ ! -x /usr/bin/tesseract ] || [ ! -f /usr/share/tesseract-ocr/5/tessdata/eng.traineddata ]; then \
	  echo "installing Debian tesseract-ocr (+ English) for OCR of images and scanned PDFs"; \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq tesseract-ocr tesseract-ocr-eng; \
	  else sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq tesseract-ocr tesseract-ocr-eng; fi; \
	fi

serve: install
	$(BIN)/ragql serve --host $(HOST) --port $(PORT)

lint: install-python
	$(BIN)/ruff check gql_server workers tests bench migrations
	$(BIN)/ruff format --check gql_server workers tests bench migrations
	$(BIN)/mypy gql_server workers

format: install-python
	$(BIN)/ruff format gql_server workers tests bench migrations
	$(BIN)/ruff check --fix gql_server workers tests bench migrations

schema: install-python
	$(BIN)/ragql export-schema --output schema.graphql

test-python: install-python tests/oidc_provider/node_modules/.installed
	$(BIN)/python -m pytest

# The OpenID Provider the OIDC tests run as a local process (npm oidc-provider), from its lock file.
tests/oidc_provider/node_modules/.installed: tests/oidc_provider/package.json tests/oidc_provider/package-lock.json
	cd tests/oidc_provider && npm ci --no-audit --no-fund --loglevel=error
	touch $@

# The second e2e signs in through a real OpenID Provider (tests/oidc_provider) in Chromium.
test-frontend: install install-system tests/oidc_provider/node_modules/.installed
	@if [ -f frontend/package.json ]; then cd frontend && npm run --silent check && npm run --silent test:unit && npm run --silent test:e2e && node e2e/oidc-login.mjs; fi

# The graphql-http GraphQL-over-HTTP audit suite (npm graphql-http, serverAudits) against a
# real `ragql serve` on a fresh data dir; fails when any MUST or SHOULD fails.
tests/http_audit/node_modules/.installed: tests/http_audit/package.json tests/http_audit/package-lock.json
	cd tests/http_audit && npm ci --no-audit --no-fund --loglevel=error
	touch $@

test-http-audit: install-python tests/http_audit/node_modules/.installed
	node tests/http_audit/run.mjs

test: install install-system lint test-python test-frontend test-http-audit

# The whole shared corpus end to end (every PDF and both full-size CSVs; 23 to 35 min on the
# shared 2-core host):
# too slow for the everyday suite, run by CI after `make test`.
test-slow: install-python
	RAGQL_SLOW_TESTS=1 $(BIN)/python -m pytest tests/test_documents_shared_data.py -k whole_shared_corpus

bench: install
	$(BIN)/python bench/api_bench.py
	$(BIN)/python bench/ingest_bench.py
	$(BIN)/python bench/retrieval_bench.py ../shared/data/scifact ../shared/data/scifact/queries.jsonl ../shared/data/scifact/qrels/train.tsv
	$(BIN)/python bench/chat_load.py

clean:
	rm -rf $(VENV) frontend/node_modules frontend/dist tests/http_audit/node_modules tests/oidc_provider/node_modules .pytest_cache .mypy_cache .ruff_cache
