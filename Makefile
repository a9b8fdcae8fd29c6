# The two commands: `make run` (demo on http://127.0.0.1:$(PORT), 8000 unless PORT=...) and
# `make test`.
PYTHON ?= python3
PORT ?= 8000

VENV := .venv
BIN := $(VENV)/bin
PG_URL ?= postgres://root@127.0.0.1:5432/postgres
REDIS_TEST_URL ?= redis://127.0.0.1:6379/15
export DJANGO_DEBUG ?= 1

.PHONY: run run-scaleout test lint migrate chromium bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.runtime: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@ $(VENV)/.runtime

migrate: $(VENV)/.runtime
	$(BIN)/python manage.py migrate --noinput

run: migrate
	$(BIN)/python manage.py collectstatic --noinput --verbosity 0
	$(BIN)/python manage.py demo --host 127.0.0.1 --port $(PORT)

# Scale-out mode (docs/deployment.md): circus binds one socket on SCALEOUT_HOST:SCALEOUT_PORT
# and runs WEB_PROCESSES Daphnes sharing it plus WORKER_PROCESSES run_worker processes, on
# PostgreSQL (DATABASE_URL) and Redis (REDIS_URL). DEBUG is off: static files are served by
# whitenoise from STATIC_ROOT, so a DJANGO_SECRET_KEY is required.
WEB_PROCESSES ?= 2
WORKER_PROCESSES ?= 1
SCALEOUT_HOST ?= 127.0.0.1
SCALEOUT_PORT ?= $(PORT)
CIRCUS_DIR ?= /tmp/handoff-console-circus-$(SCALEOUT_PORT)

run-scaleout: export DJANGO_DEBUG = 0
# It serves plain HTTP on SCALEOUT_HOST: no HTTPS redirect, no HSTS, cookies over HTTP.
# Behind a TLS proxy in production set these to 1 / a number of seconds (README,
# "Production settings"), or leave them unset where the settings' secure defaults apply.
run-scaleout: export DJANGO_SECURE_SSL_REDIRECT ?= 0
run-scaleout: export DJANGO_SECURE_COOKIES ?= 0
run-scaleout: export DJANGO_HSTS_SECONDS ?= 0
run-scaleout: $(VENV)/.runtime
	@for v in DATABASE_URL REDIS_URL DJANGO_SECRET_KEY; do \
	  eval "test -n \"\$$$$v\"" || grep -q "^$$v=." "$${ENV_FILE:-.env}" 2>/dev/null || \
	  { echo "run-scaleout: set $$v in the environment or in $${ENV_FILE:-.env} (docs/deployment.md)" >&2; exit 2; }; \
	done
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py collectstatic --noinput --verbosity 0
	mkdir -p $(CIRCUS_DIR)
	PYTHONPATH=$(CURDIR)/deploy CONSOLE_ROOT=$(CURDIR) CONSOLE_PYTHON=$(abspath $(BIN))/python CIRCUS_DIR=$(CIRCUS_DIR) \
	BIND_HOST=$(SCALEOUT_HOST) BIND_PORT=$(SCALEOUT_PORT) \
	WEB_PROCESSES=$(WEB_PROCESSES) WORKER_PROCESSES=$(WORKER_PROCESSES) \
	$(BIN)/circusd deploy/circus.ini

# Browser tests drive Debian's Chromium; Playwright's own browser download can't work here.
chromium:
	@command -v chromium >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

test: $(VENV)/.dev chromium lint
	$(BIN)/python manage.py makemigrations --check --dry-run
	$(BIN)/pytest -m "not scaleout"
	DATABASE_URL=$(PG_URL) REDIS_URL=$(REDIS_TEST_URL) $(BIN)/pytest -m pg

bench: $(VENV)/.dev
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) staticfiles media db.sqlite3* test-db.sqlite3*
