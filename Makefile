# telco-robot: `make demo` and `make test` are the two commands; the rest are parts of them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PROCESSES ?= $(shell n=$$(nproc 2>/dev/null || echo 2); [ $$n -ge 2 ] && echo $$n || echo 2)
VARS ?= variables/lab.yaml
N ?= 5
export PY


.PHONY: system-packages
.PHONY: help setup demo test unit suites lint docs bench phase realstack lab-up lab-down lab-status clean \
	jasmin-up jasmin-down jasmin-status voice-up voice-down voice-status voice-smoke

help:
	@echo "make demo        set up, start the lab, run every suite with pabot, write results/, stop the lab"
	@echo "make test        set up, unit tests, the suites against the lab, the real-stack checks, lint"
	@echo "make phase N=5   one weekly phase (1 voice-SMS, 2 API, 3 failover+security, 4 performance, 5 full system)"
	@echo "make lint | docs | bench | realstack | lab-up | lab-down | lab-status | clean"
	@echo "make jasmin-up | jasmin-down | jasmin-status   real Jasmin 0.11.0 (the real-stack SMS gateway)"
	@echo "make voice-up | voice-down | voice-status | voice-smoke   real Kamailio + RTPEngine (x2 each)"

# --- set-up: a venv with the pinned requirements, re-installed when they change -----------------
setup: $(STAMP)
$(STAMP): requirements.txt requirements-dev.txt
	@test -n "$(PYTHON)" || { echo "Python 3.11 is needed (python3.11 or python3 on PATH)"; exit 2; }
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' || \
		{ echo "$(PYTHON) is older than 3.11; install Python 3.11"; exit 2; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $(STAMP)

# Debian packages of the real peers (decK, SIPp, Kamailio, RTPEngine); a failure under CI only.
system-packages:
	@tools/system-packages

# --- the two commands ----------------------------------------------------------------------------
demo: setup system-packages
	tools/run-suites --vars $(VARS) --processes $(PROCESSES) suites

test: setup system-packages
	$(MAKE) --no-print-directory unit
	$(MAKE) --no-print-directory suites
	$(MAKE) --no-print-directory realstack
	$(MAKE) --no-print-directory lint

# Service-rule tests also run on PostgreSQL where the real-stack server answers (required under CI=true).
unit: setup
	BILLING_TEST_POSTGRES_URL=$$($(PY) tools/postgres.py url) $(PY) -m pytest -q

suites: setup system-packages
	tools/run-suites --vars $(VARS) --processes $(PROCESSES) suites

phase: setup system-packages
	@d=$$(ls -d suites/0$(N)_* 2>/dev/null | head -n 1); \
	test -n "$$d" || { echo "No phase $(N): use N=1..5"; exit 2; }; \
	tools/run-suites --vars $(VARS) --processes $(PROCESSES) --out results/phase-$(N) "$$d"

# The real-stack profile: the same suites, only those tagged `realstack`, against real servers.
# Where a real server is missing it is skipped with a message; under CI (CI=true) that is a failure.
realstack: setup system-packages
	tools/realstack-run --processes $(PROCESSES)

# --- quality -------------------------------------------------------------------------------------
lint: setup
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy
	$(VENV)/bin/robocop check suites resources
	$(VENV)/bin/robocop format --check --diff suites resources

docs: setup
	$(PY) tools/docs.py

bench: setup
	$(PY) -m bench --processes $(PROCESSES)

# --- the lab by hand -----------------------------------------------------------------------------
lab-up: setup
	$(PY) -m lab up --variables $(VARS)
lab-down:
	@test -x $(PY) && $(PY) -m lab down --variables $(VARS) || true
lab-status: setup
	$(PY) -m lab status --variables $(VARS)

# --- real Jasmin by hand (the real-stack profile's SMS gateway) ----------------------------------
jasmin-up: setup
	$(PY) -m realstack.jasmin up --variables variables/realstack.yaml
jasmin-down:
	@test -x $(PY) && $(PY) -m realstack.jasmin down || true
jasmin-status: setup
	$(PY) -m realstack.jasmin status --variables variables/realstack.yaml

# --- real Kamailio + RTPEngine by hand (the real-stack profile's voice side) ---------------------
voice-up: setup
	$(PY) -m realstack.voice up --variables variables/realstack.yaml
voice-down:
	@test -x $(PY) && $(PY) -m realstack.voice down || true
voice-status: setup
	$(PY) -m realstack.voice status --variables variables/realstack.yaml
voice-smoke: setup
	$(PY) -m realstack.voice smoke --variables variables/realstack.yaml

clean: lab-down jasmin-down voice-down
	rm -rf results/* .pytest_cache .mypy_cache .ruff_cache
