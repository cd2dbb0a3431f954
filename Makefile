# The two commands a new reader needs are `make book` and `make test`; both set up .venv first.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

export PYTHONHASHSEED := 0

.PHONY: setup book test unit nbval lab outputs clean

setup: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	touch $(STAMP)

## book: build the website from a clean _build, zero warnings allowed
book: $(STAMP)
	rm -rf _build
	$(BIN)/jupyter-book build . -W -n --keep-going
	@echo "The book is at file://$(CURDIR)/_build/html/index.html"

## test: unit, parity and property tests, then strict nbval over every chapter
test: $(STAMP)
	$(BIN)/python -m pytest tests book --nbval --nbval-sanitize-with tests/nbval_sanitize.cfg -n 2 --dist loadfile -q

unit: $(STAMP)
	$(BIN)/python -m pytest tests -q

nbval: $(STAMP)
	$(BIN)/python -m pytest book --nbval --nbval-sanitize-with tests/nbval_sanitize.cfg -q

## lab: JupyterLab on the book, with optedu importable
lab: $(STAMP)
	$(BIN)/jupyter lab book

## outputs: re-run every chapter in a fresh kernel and store its outputs (NB=book/x.ipynb for one)
outputs: $(STAMP)
	$(BIN)/python tools/run_notebooks.py $(NB)

clean:
	rm -rf _build .pytest_cache .hypothesis
