# The two commands: `make demo` and `make test`. Both set up everything they need and are
# fast (no-ops) the second time.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
WEBDET := $(VENV)/bin/webdet
PY_STAMP := $(VENV)/.webdet-installed
NODE_STAMP := webapp/node_modules/.webdet-installed
APP := webapp/dist/index.html
DEMO_DIR ?= demo
# The lock: constraints.txt (verified on Python 3.11 and 3.12), or constraints-py3.10.txt for a Python 3.10.
PYTHON_VERSION := $(shell $(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])')
LOCK := $(if $(filter 3.10,$(PYTHON_VERSION)),constraints-py3.10.txt,constraints.txt)

.PHONY: demo test setup python-env python312-env webapp chromium redis test-js test-py clean

demo: setup
	$(WEBDET) demo --out $(DEMO_DIR)

test: setup python312-env chromium redis
	cd webapp && npm test
	$(VENV)/bin/pytest tests

setup: python-env webapp

python-env: $(PY_STAMP)

$(PY_STAMP): requirements.txt $(LOCK) setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt -c $(LOCK)
	$(PY) -m pip install -q --no-deps -e .
	$(PY) -m pip check
	touch $@

# The newest supported Python, 3.12, in a second environment from the same lock, with the package installed as a
# user gets it (a wheel build, not editable); tests/test_python312.py smoke-tests it. Where no Python 3.12 is found
# (python3.12 on PATH, or a pyenv-installed one) there is nothing to build and that test skips.
PYTHON312 ?= $(shell $(PYTHON) tests/interpreters.py 3.12)
VENV312 := .venv312
PY312 := $(VENV312)/bin/python
PY312_DEPS := $(VENV312)/.deps-installed
PY312_STAMP := $(VENV312)/.webdet-installed
PACKAGE_FILES := setup.py $(wildcard webdet/*.py webdet/service/*.py data_prep/*.py training/*.py export/*.py \
                   configs/*.py configs/*.yaml webapp/__init__.py)

python312-env: $(if $(PYTHON312),$(PY312_STAMP))

$(PY312_DEPS): requirements.txt constraints.txt
	test -x $(PY312) || $(PYTHON312) -m venv $(VENV312)
	$(PY312) -m pip install -q --upgrade pip
	$(PY312) -m pip install -q -r requirements.txt -c constraints.txt
	touch $@

$(PY312_STAMP): $(PY312_DEPS) $(PACKAGE_FILES) $(APP)
	rm -rf build
	$(PY312) -m pip install -q --no-deps --force-reinstall .
	rm -rf build
	$(PY312) -m pip check
	touch $@

webapp: $(APP)

$(NODE_STAMP): webapp/package.json webapp/package-lock.json
	cd webapp && npm ci --no-audit --no-fund
	touch $@

$(APP): $(NODE_STAMP) $(wildcard webapp/src/* webapp/icon*) webapp/index.html webapp/sw.js webapp/manifest.webmanifest webapp/build.mjs
	cd webapp && npm run build

chromium:
	@command -v chromium >/dev/null || { apt-get update -qq && apt-get install -y -qq chromium; }

# The job-queue tests start their own redis-server on a loopback port; only the binary is needed.
redis:
	@command -v redis-server >/dev/null || { apt-get update -qq && apt-get install -y -qq redis-server; }

clean:
	rm -rf $(VENV) $(VENV312) webapp/node_modules webapp/dist
