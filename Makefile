# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha256sum | cut -c1-12)

.PHONY: demo test lint typecheck unit install sizes clean bench-tracking

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	rm -f $(VENV)/.installed-* && touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	MODELPILOT_HOME=$${MODELPILOT_HOME:-$(CURDIR)/.demo} $(PY) -m modelpilot.demo

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks

typecheck: $(STAMP)
	$(VENV)/bin/mypy

unit: $(STAMP)
	$(PY) -m pytest -q

test: lint typecheck unit

sizes:
	@find src -name '*.py' -exec wc -l {} + | sort -n | awk '$$1 > 600'

bench-tracking: $(STAMP)
	$(PY) benchmarks/tracking.py

clean:
	rm -rf $(VENV) .demo .mypy_cache .ruff_cache
