# The two commands: `make run` and `make test`. Everything else is set up on demand.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000
export HOST PORT

RUN_STAMP := $(VENV)/.stamp-run-$(shell cat requirements.txt | sha1sum | cut -c1-12)
DEV_STAMP := $(VENV)/.stamp-dev-$(shell cat requirements.txt requirements-dev.txt | sha1sum | cut -c1-12)

.PHONY: static-checks tests-apart tests-browsers run test check fuzz install install-dev system browsers services npm lint lint-js bench docs docs-build

$(VENV)/bin/python:
	python3 -m venv $(VENV)

# The project itself goes in editable, so `import speech` works from any folder (the README's examples).
$(RUN_STAMP): requirements.txt | $(VENV)/bin/python
	$(VENV)/bin/pip install -q --disable-pip-version-check -r requirements.txt
	$(VENV)/bin/pip install -q --disable-pip-version-check --no-deps -e .
	touch $@

$(DEV_STAMP): requirements.txt requirements-dev.txt | $(VENV)/bin/python
	$(VENV)/bin/pip install -q --disable-pip-version-check -r requirements-dev.txt
	$(VENV)/bin/pip install -q --disable-pip-version-check --no-deps -e .
	touch $@ $(RUN_STAMP)

install: $(RUN_STAMP)
install-dev: $(DEV_STAMP)

# A local secret key, made once, private to you; the settings read it when DJANGO_SECRET_KEY is unset.
.secret-key:
	umask 077 && $(PY) -c "import secrets; print(secrets.token_urlsafe(50))" > $@

run: install .secret-key
	$(PY) manage.py migrate --noinput && \
	$(PY) manage.py collectstatic --noinput -v 0 && \
	exec $(PY) -m gunicorn -c gunicorn.conf.py

# Debian's browsers and tools for the end-to-end tests (never a downloaded browser), and its redis-server,
# nginx and PostgreSQL (the tests start their own on free ports: shared cache and limits; the production
# topology behind nginx with usage records in PostgreSQL). What is missing comes in one apt-get run.
system:
	@full=""; lean=""; \
	{ command -v chromium && command -v ffprobe; } >/dev/null || full="$$full chromium ffmpeg"; \
	{ command -v firefox-esr && command -v pulseaudio; } >/dev/null || full="$$full firefox-esr pulseaudio"; \
	{ command -v WebKitWebDriver && command -v Xvfb && dpkg -s gstreamer1.0-plugins-bad gstreamer1.0-libav; } \
		>/dev/null 2>&1 || lean="webkit2gtk-driver xvfb gstreamer1.0-plugins-bad gstreamer1.0-libav"; \
	command -v redis-server >/dev/null || full="$$full redis-server"; \
	{ PATH="$$PATH:/usr/sbin" command -v nginx && ls /usr/lib/postgresql/*/bin/initdb; } >/dev/null 2>&1 || \
		full="$$full nginx-light postgresql"; \
	command -v npm >/dev/null || full="$$full nodejs npm"; \
	[ -z "$$full$$lean" ] || { apt-get update -qq && export DEBIAN_FRONTEND=noninteractive && \
		{ [ -z "$$full" ] || apt-get install -y -qq $$full >/dev/null; } && \
		{ [ -z "$$lean" ] || apt-get install -y -qq --no-install-recommends $$lean >/dev/null; }; }

browsers services: system

# Debian's Node for the npm packages below, each pinned by its lock file.
NODE_READY := command -v npm >/dev/null || \
	{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null; }

# Browser clients the e2e tests run (the official openai SDK, kvsur's player).
NPM_STAMP := tests/e2e/npm/node_modules/.package-lock.json
npm: $(NPM_STAMP)
$(NPM_STAMP): tests/e2e/npm/package-lock.json
	@$(NODE_READY)
	cd tests/e2e/npm && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error

# ESLint for the player's JavaScript (package.json, eslint.config.js).
ESLINT_STAMP := node_modules/.package-lock.json
$(ESLINT_STAMP): package-lock.json
	@$(NODE_READY)
	npm ci --no-audit --no-fund --ignore-scripts --loglevel=error

lint-js: $(ESLINT_STAMP)
	node_modules/.bin/eslint $(ESLINT_FLAGS) .

# The Python packages and the Debian ones come side by side; then what needs both. The checks and the
# two groups of tests run side by side too: one group at a time left a quarter of the two cores idle
# (processes starting, browsers and servers waiting on each other). Each group's output comes whole.
test:
	@$(MAKE) --no-print-directory -j2 install-dev system
	@$(MAKE) --no-print-directory npm $(ESLINT_STAMP)
	@$(MAKE) --no-print-directory -j3 --output-sync=target static-checks docs-build tests-apart tests-browsers

# Lint and types: the start of `make check` and a part of `make test`.
static-checks: install-dev $(ESLINT_STAMP)
	node_modules/.bin/eslint .
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

# The browser tests run apart: Playwright's sync API leaves an event loop marked as running in the
# worker's thread, and Django then refuses a later test's database set-up there.
tests-apart:
	$(VENV)/bin/pytest -m "not e2e" -n 2 --dist loadfile --durations=15
tests-browsers:
	$(VENV)/bin/pytest -m e2e -n 2 --dist loadfile --durations=15

# The fast loop: lint, types and the tests that start no other process (no server, browser, nginx, venv).
check: static-checks
	$(VENV)/bin/pytest -m "not e2e and not topology and not server" -n 2 -q

# A long exploratory run of the generated tests: new examples each run, ten times as many for the API.
fuzz: install-dev
	HYPOTHESIS_PROFILE=explore $(VENV)/bin/pytest tests/test_fuzz_api.py tests/test_fuzz_text.py

lint: install-dev
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .
	$(VENV)/bin/mypy
	$(MAKE) lint-js ESLINT_FLAGS=--fix

bench: install-dev
	$(PY) -m bench.ttfb

# The docs site (mkdocs.yml, docs/): built with warnings as errors by `make test`; `make docs` serves it
# offline on 127.0.0.1:8001 (no web fonts, no CDN), rebuilding as pages change.
export NO_MKDOCS_2_WARNING := 1
docs-build: install-dev
	$(VENV)/bin/mkdocs build --strict --quiet

docs: install-dev
	$(VENV)/bin/mkdocs serve --strict --dev-addr 127.0.0.1:8001
