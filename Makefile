# 驛站 Yizhan. `make run` starts a demo bureau; `make test` runs every check CI runs.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell sha1sum pyproject.toml | cut -c1-12)
PG_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/test
# clamd for the tests, started by scripts/clamd.sh with a signature file the script makes.
CLAMD_SOCKET ?= /tmp/yizhan-clamd/clamd.sock
export YIZHAN_TEST_CLAMD ?= $(CLAMD_SOCKET)

.PHONY: run test lint unit units services bench bench-accept catalogs clean screenshots bench-admin bench-search proofs

$(STAMP): pyproject.toml scripts/system-packages.sh
	scripts/system-packages.sh
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "Python 3.11 or newer is needed (found $$($(PYTHON) --version))"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	rm -f $(VENV)/.installed-*
	touch $@

## run: set up, initialise ./var, load the demo bureau, start the daemon in the foreground
run: $(STAMP)
	scripts/clamd.sh
	scripts/mailservers.sh
	$(BIN)/yizhan init
	@# The demo scans attachments with the clamd just started (a production clamd keeps its
	@# own socket; see docs/content-rules.md).
	test -e var/rules.toml || printf '[content.scanner]\nsocket = "$(CLAMD_SOCKET)"\n' > var/rules.toml
	$(BIN)/yizhan demo
	exec $(BIN)/yizhan serve

## test: lint, type-check, then the whole suite on SQLite and on PostgreSQL
test: $(STAMP) services lint unit

lint: $(STAMP) units
	$(BIN)/ruff check yizhan tests $(wildcard bench) $(wildcard proofs)
	$(BIN)/ruff format --check yizhan tests $(wildcard bench) $(wildcard proofs)
	$(BIN)/mypy yizhan
	$(BIN)/lint-imports

## units: systemd-analyze verify on systemd/*, with ExecStart pointing into this tree's venv.
## verify exits 0 on many mistakes (an unknown Type=), so any message it prints fails too.
units:
	@if ! command -v systemd-analyze >/dev/null 2>&1; then \
		echo "systemd-analyze not found: units not verified (scripts/system-packages.sh installs it)"; \
		exit 0; fi; \
	dir=$$(mktemp -d); \
	for f in systemd/*; do sed "s#/opt/yizhan/.venv#$(abspath $(VENV))#g" $$f > $$dir/$${f##*/}; done; \
	out=$$(systemd-analyze verify $$dir/* 2>&1); rc=$$?; rm -rf $$dir; \
	if [ $$rc -ne 0 ] || [ -n "$$out" ]; then echo "$$out"; echo "systemd units: FAILED"; exit 1; fi; \
	echo "systemd units OK: $$(ls systemd | tr '\n' ' ')"

# The two databases' runs go side by side, one a core: each test has its own data directory,
# database (a schema on PostgreSQL), ports and Dovecot, so they share nothing but clamd. Each
# run's output is kept in build/ and printed when both are done.
unit: $(STAMP)
	@mkdir -p build
	@echo "pytest on SQLite and on PostgreSQL, side by side (output: build/test-*.log)"
	@YIZHAN_TEST_DB=sqlite $(BIN)/pytest -q > build/test-sqlite.log 2>&1 & sqlite=$$!; \
	YIZHAN_TEST_DB=postgresql YIZHAN_TEST_PG=$(PG_URL) $(BIN)/pytest -q \
		> build/test-postgresql.log 2>&1; postgresql=$$?; \
	wait $$sqlite; sqlite=$$?; \
	echo "== SQLite"; cat build/test-sqlite.log; \
	echo "== PostgreSQL"; cat build/test-postgresql.log; \
	test $$sqlite -eq 0 && test $$postgresql -eq 0

## services: start what the tests talk to (PostgreSQL on 127.0.0.1:5432, clamd), install Dovecot
services:
	@scripts/services.sh
	@scripts/clamd.sh
	@scripts/mailservers.sh

## bench: the whole daemon under 800 HELP commands on SQLite and PostgreSQL, beside the bare
## fsyncing sink and GNU Mailman 3 (installed into build/mailman-venv on first use): one table;
## then at a steady 50 commands/s (latency), one daemon against two, and a sealed document to
## 1,000 mailboxes. About eight minutes (search at 1,000,000 documents: make bench-search)
bench: $(STAMP) services
	$(BIN)/python -m bench.e2e --mailman --stages
	$(BIN)/python -m bench.e2e --commands 500 --rate 50 --stages
	YIZHAN_TEST_PG=$(PG_URL) $(BIN)/python -m bench.scale_out
	YIZHAN_TEST_PG=$(PG_URL) $(BIN)/python -m bench.scale_out --core-each
	YIZHAN_TEST_PG=$(PG_URL) $(BIN)/python -m bench.fanout

## bench-accept: the gateway alone against the bare fsyncing sink, 8 and 32 connections
bench-accept: $(STAMP)
	$(BIN)/python -m bench.accept

## proofs: the crash suite (50 SIGKILLs under load, then each crash point) on SQLite and
## PostgreSQL, and two daemons on one PostgreSQL with one killed
proofs: $(STAMP) services
	$(BIN)/python -m proofs.crash --kills 50
	YIZHAN_TEST_PG=$(PG_URL) $(BIN)/python -m proofs.crash --kills 50 --postgresql
	YIZHAN_TEST_PG=$(PG_URL) $(BIN)/python -m proofs.two_daemons

## bench-admin: every admin page's server time with 10,000 people and 100,000 documents
bench-admin: $(STAMP)
	$(BIN)/python -m bench.admin_pages

## bench-search: SEARCH over 1,000,000 generated documents, p50/p95 on SQLite and PostgreSQL
bench-search: $(STAMP) services
	YIZHAN_TEST_PG=$(PG_URL) $(BIN)/python -m bench.search

## screenshots: the admin page's main pages, taken by the browser tests, into docs/screenshots/
screenshots: $(STAMP)
	YIZHAN_TEST_DB=sqlite YIZHAN_SCREENSHOTS=docs/screenshots $(BIN)/pytest -q tests/admin/test_browser.py

clean:
	rm -rf $(VENV) var build *.egg-info

## catalogs: refresh the Babel catalogs after changing a template (then translate the new entries)
catalogs: $(STAMP)
	mkdir -p build
	$(BIN)/pybabel extract -F babel.cfg -k text:2 --no-location --sort-output -o build/yizhan.pot .
	for lang in zh_CN zh_TW; do \
		$(BIN)/pybabel update -i build/yizhan.pot -d yizhan/templates/locale -D yizhan -l $$lang \
			--no-fuzzy-matching; done
