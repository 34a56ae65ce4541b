# Two commands for a fresh machine: `make demo` and `make test` (see README.md).
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip
DEMO_OUT ?= demo_output

.PHONY: demo test test-fast lint bench bench-quick clean install install-test

$(VENV)/.created:
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "need $(PYTHON) on PATH"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	@touch $@

$(VENV)/.installed: $(VENV)/.created pyproject.toml
	$(PIP) install --quiet -e .
	@touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(PIP) install --quiet -e ".[test,scoring]"
	@touch $@

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

demo: $(VENV)/.installed
	$(VENV)/bin/vgr-etl demo --output $(DEMO_OUT)

lint: $(VENV)/.installed-test
	$(VENV)/bin/ruff check beam_pipelines tests benchmarks infra
	$(VENV)/bin/ruff format --check beam_pipelines tests benchmarks infra

test: lint
	$(PY) -m pytest -n 2 --dist loadfile tests

test-fast: lint
	$(PY) -m pytest -n 2 -m "not slow" tests

bench: $(VENV)/.installed
	$(PY) -m benchmarks.run

bench-quick: $(VENV)/.installed
	$(PY) -m benchmarks.run --quick

clean:
	rm -rf $(DEMO_OUT) build *.egg-info
