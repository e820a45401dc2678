# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
HASH := $(shell cat pyproject.toml | sha256sum | cut -c1-12)
# Two stamps, one venv: the demo needs only the package (`-e .`, what demo.py and the server
# import); the tests add `.[test]` (xgboost, lightgbm, mypy, tritonclient...: ~1.6 GB) on top.
# `make test` after `make demo` upgrades the same venv; `make demo` after `make test` reuses it.
# A changed pyproject.toml changes the hash, so both stamps go stale and reinstall.
DEMO_STAMP := $(VENV)/.installed-demo-$(HASH)
STAMP := $(VENV)/.installed-test-$(HASH)

.PHONY: demo test test-slow lint typecheck unit install sizes clean bench-tracking

# setup.py builds the data plane's compiled records decoder in place (optional: skipped
# without a C++17 compiler); a changed decoder source reinstalls, which rebuilds it.
$(DEMO_STAMP): pyproject.toml setup.py src/modelpilot/serving/_records.cpp
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e .
	rm -f $(VENV)/.installed-demo-* && touch $(DEMO_STAMP)

$(STAMP): $(DEMO_STAMP)
	$(PY) -m pip install -q -e '.[test]'
	rm -f $(VENV)/.installed-test-* && touch $(STAMP)

install: $(STAMP)

demo: $(DEMO_STAMP)
	MODELPILOT_HOME=$${MODELPILOT_HOME:-$(CURDIR)/.demo} $(PY) -m modelpilot.demo

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks

typecheck: $(STAMP)
	$(VENV)/bin/mypy

# Two pytest-xdist workers, a whole test file each (module fixtures start their servers once):
# most tests wait on servers, subprocesses and databases, so two workers on 2 cores took the
# suite from 19m43s to 11m. `make unit TEST_WORKERS=0` runs it in one process.
# `make test` leaves out the tests marked `slow` (the demo, agents killed in
# every stage, two agents for a while, the browser, ONNX conversions, drift calibration, Ray)
# and the PostgreSQL cases outside the contract suites (tests/conftest.py): they take minutes and
# `make test-slow` (run by .ci/run after `make test`) runs them.
TEST_WORKERS ?= 2
unit: $(STAMP)
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile -m "not slow"

test-slow: $(STAMP)
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile -m slow

test: lint typecheck unit

sizes:
	@find src -name '*.py' -exec wc -l {} + | sort -n | awk '$$1 > 600'

bench-tracking: $(STAMP)
	$(PY) benchmarks/tracking.py

clean:
	rm -rf $(VENV) .demo .mypy_cache .ruff_cache
