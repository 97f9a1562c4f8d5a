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

.PHONY: demo test setup python-env webapp chromium redis test-js test-py clean

demo: setup
	$(WEBDET) demo --out $(DEMO_DIR)

test: setup chromium redis
	cd webapp && npm test
	$(VENV)/bin/pytest tests

setup: python-env webapp

python-env: $(PY_STAMP)

$(PY_STAMP): requirements.txt constraints.txt setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt -c constraints.txt
	$(PY) -m pip install -q --no-deps -e .
	$(PY) -m pip check
	touch $@

webapp: $(APP)

$(NODE_STAMP): webapp/package.json webapp/package-lock.json
	cd webapp && npm ci --no-audit --no-fund
	touch $@

$(APP): $(NODE_STAMP) $(wildcard webapp/src/*) webapp/index.html
	cd webapp && npm run build

chromium:
	@command -v chromium >/dev/null || { apt-get update -qq && apt-get install -y -qq chromium; }

# The job-queue tests start their own redis-server on a loopback port; only the binary is needed.
redis:
	@command -v redis-server >/dev/null || { apt-get update -qq && apt-get install -y -qq redis-server; }

clean:
	rm -rf $(VENV) webapp/node_modules webapp/dist
