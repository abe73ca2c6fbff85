# trading-workbench: `make demo` runs the main job on embedded defaults, `make test` runs every check.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip --disable-pip-version-check -q

.PHONY: demo test install install-dev lint sync cells docs nbtest pytest bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# constraints.txt pins every package (the lock); pyproject.toml names the direct dependencies.
$(VENV)/.installed: pyproject.toml constraints.txt | $(BIN)/python
	$(PIP) install -c constraints.txt -e .
	@touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(PIP) install -c constraints.txt -e ".[dev]"
	@touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

demo: $(VENV)/.installed
	$(BIN)/twb demo --history 252 --days 3

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .

sync: $(VENV)/.installed-dev
	$(BIN)/python tools/check_sync.py

# exported cells read as paragraphs: none over 40 code lines, median under 15 (every notebook; the baseline is empty);
# every public parameter has a docments comment (every notebook; the baseline is empty)
cells: $(VENV)/.installed-dev
	$(BIN)/python tools/cell_sizes.py
	$(BIN)/python tools/docments.py

# the docs pages: every notebook as HTML with its kept outputs, and an index (nbconvert; Quarto-free) in _docs/
docs: $(VENV)/.installed-dev
	$(BIN)/python tools/make_docs.py

nbtest: $(VENV)/.installed-dev
	$(BIN)/nbdev-test --n-workers 2

# The store suite runs on SQLite and on a real PostgreSQL server, started (and installed if missing) here.
# Two workers (pytest-xdist), a test file each at a time: most tests wait on subprocesses, sockets and kernels.
PYTEST_WORKERS ?= 2
pytest: $(VENV)/.installed-dev
	TWB_TEST_PG_URL="$${TWB_TEST_PG_URL:-$$(bash tools/postgres-up.sh)}" TWB_CHROMIUM="$${TWB_CHROMIUM:-$$(bash tools/chromium-up.sh)}" \
	  $(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadfile --durations=15

test: lint sync cells nbtest pytest

bench: $(VENV)/.installed
	@for b in benchmarks/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) runs/*.db runs/*.db-* _proc _docs
