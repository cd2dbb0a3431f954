# The two commands a new reader needs are `make book` and `make test`; both set up .venv first.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

export PYTHONHASHSEED := 0

# experiments-% (a chapter's experiment, optedu/experiments/) is a pattern rule: make skips
# implicit rules for phony targets, so its names are not listed here
.PHONY: setup book test lint types unit nbval unpinned site-test lab lab-source outputs catalogue \
	bench experiments \
	experiments-quick experiments-sweeps experiments-sharded-rules experiments-list clean

setup: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	# mup 1.0.0 (µP's reference, tests/training/test_mup.py) without its declared torchvision,
	# pandas and seaborn, which its core does not import: with them pip would replace torch
	$(BIN)/python -m pip install --quiet --no-deps mup==1.0.0
	# kron-torch 0.3.3 (PSGD-Kron's reference) without triton, a GPU compiler it declares and
	# its CPU path never imports
	$(BIN)/python -m pip install --quiet --no-deps kron-torch==0.3.3
	# the low-memory rules' references without transformers, which they import only for a
	# version check the compared paths never reach (tests/optim/_hf_stub.py)
	$(BIN)/python -m pip install --quiet --no-deps galore-torch==1.0 apollo-torch==1.0.3 \
	  adam-mini==1.1.1
	# timm 1.0.31, for its cautious AdamW alone (optedu/instruments/references.py), without
	# torchvision, which its package imports and timm.optim.adamw does not
	$(BIN)/python -m pip install --quiet --no-deps timm==1.0.31
	touch $(STAMP)

# MathJax 3 served by the site itself, so equations render offline: unpacked from the npm
# registry's package at build time into _vendor/ (ignored by git; a static path of the site).
# Not under _static/: Jupyter Book adds every .js found there to every page as a script.
MATHJAX_VERSION := 3.2.2
MATHJAX := _vendor/mathjax/tex-chtml.js

$(MATHJAX):
	rm -rf _vendor/mathjax && mkdir -p _vendor/mathjax
	cd _vendor && npm pack mathjax@$(MATHJAX_VERSION) --silent >/dev/null
	tar -xzf _vendor/mathjax-$(MATHJAX_VERSION).tgz -C _vendor/mathjax --strip-components=2 package/es5
	rm _vendor/mathjax-$(MATHJAX_VERSION).tgz

## book: build the website from a clean _build, zero warnings allowed, then typeset its
## equations once (tools/typeset.js, with node and the MathJax the site serves)
book: $(STAMP) $(MATHJAX)
	$(BIN)/python tools/questions.py --check
	$(BIN)/python tools/claims.py --check
	$(BIN)/python tools/launch.py --check
	$(BIN)/python tools/map.py --check
	rm -rf _build
	$(BIN)/jupyter-book build . -W -n --keep-going
	node tools/typeset.js _build/html
	@echo "The book is at file://$(CURDIR)/_build/html/index.html"

## test: unit, parity and property tests (full tier: every grid combination), then strict
## nbval over every chapter
test: $(STAMP)
	OPTEDU_TESTS=full $(BIN)/python -m pytest tests book -p nbval --nbval \
		--nbval-sanitize-with tests/nbval_sanitize.cfg -n 2 --dist loadfile -q

## lint: ruff over the package, the tests and the tools (pyproject.toml's [tool.ruff]), then types
lint: $(STAMP)
	$(BIN)/ruff check .
	$(MAKE) --no-print-directory types

## types: mypy over the package (pyproject.toml's [tool.mypy]), no error allowed
types: $(STAMP)
	$(BIN)/mypy

## unit: the quick tier of the tests (pairwise grids, 5 hypothesis draws), under a minute
unit: $(STAMP)
	$(BIN)/python -m pytest tests -q

nbval: $(STAMP)
	$(BIN)/python -m pytest book -p nbval --nbval --nbval-sanitize-with tests/nbval_sanitize.cfg -q

## unpinned: every chapter (NB=book/x.ipynb for one) as a reader's Jupyter runs it, torch's CPU
## kernels not capped at AVX2: fails if a cell raises; outputs neither compared nor stored.
## CI runs it after `make test`'s strict nbval, not instead: the stored outputs reproduce only
## with the cap and a reader's Jupyter has none, so on a processor with AVX-512 no one run can
## check both; where the cap changes no kernel the run would repeat nbval's, and is skipped.
unpinned: $(STAMP)
	$(BIN)/python tools/run_notebooks.py --unpinned --check --jobs 2 $(NB)

## site-test: the built site (make book first) in headless Chromium: links, equations, figures,
## dropdowns, search, phone width, page weight; then a reader copy of a chapter opened in a
## JupyterLab that the test starts (tests/lab). Needs Debian's chromium and chromium-driver.
site-test: $(STAMP)
	$(BIN)/python -m pytest tests/site --site _build/html -q -n 2 --dist loadgroup
	$(BIN)/python -m pytest tests/lab --lab -q -n 0

## lab: JupyterLab on reader copies of the chapters, the question bank and the claims page
## (_reader/, named in reading order, 07_adam.ipynb; rewritten by tools/reader.py when a source
## is newer): the website's text, numbers and folded answers, still runnable. It opens on the
## index, 00_index.ipynb.
## lab-source: JupyterLab on book/ itself, MyST and all, for editing chapters
lab: $(STAMP)
	$(BIN)/python tools/reader.py
	$(BIN)/jupyter lab _reader/00_index.ipynb

lab-source: $(STAMP)
	$(BIN)/jupyter lab book

## outputs: re-run every chapter in a fresh kernel and store its outputs (NB=book/x.ipynb for one)
outputs: $(STAMP)
	$(BIN)/python tools/run_notebooks.py $(NB)

## catalogue: after a row of optedu/optim/catalogue.py is added or changed, store again what
## reads it: the new rows of experiments/cost.jsonl (experiments-cost), the sharded-rules run
## (experiments-sharded-rules), then the chapters whose tables list every optimizer, then the
## question bank, which reads what they glue
catalogue: $(STAMP)
	$(MAKE) experiments-cost experiments-sharded-rules
	$(BIN)/python tools/run_notebooks.py book/cheatsheet.ipynb book/memory.ipynb \
		book/sharded_rules.ipynb
	$(BIN)/python tools/questions.py

## bench: optimizer-step benchmark (not part of `make test`): optedu against torch's single-tensor,
## foreach and fused steps, with the memory roofline; writes bench/results_full.* (5 minutes on
## an idle 2-core machine, much longer under load: run it idle). BENCH_ARGS=--quick for a short one.
bench: $(STAMP)
	$(BIN)/python tools/bench.py $(BENCH_ARGS)

## experiments: the optimizer benchmark of the part "Choosing an optimizer" (not part of the
## tests): every contestant of optedu.choosing on every workload, external tuning (20 quasi-random
## trials, the best one on two more seeds) and self-tuning (defaults, three seeds), on every core;
## appends each run to experiments/results-full.jsonl and resumes where it stopped.
## experiments-quick: 5 trials, base workloads, one seed (experiments/results-quick.jsonl).
experiments: $(STAMP)
	$(BIN)/python -m optedu.choosing.runner $(EXPERIMENTS_ARGS)

experiments-quick: $(STAMP)
	$(BIN)/python -m optedu.choosing.runner --quick $(EXPERIMENTS_ARGS)

## experiments-sweeps: one or two hyperparameters on a fixed grid, the others at their defaults
## (optedu.choosing.sweeps): the learning rate of ten optimizers on the five base workloads, and
## the learning rate against the weight decay; experiments/sweeps.jsonl, resumable
experiments-sweeps: $(STAMP)
	$(BIN)/python -m optedu.choosing.sweeps $(EXPERIMENTS_ARGS)

## experiments-sharded-rules: the chapter "Whole-tensor rules on shards": every optedu optimizer
## under FSDP2 on 2 gloo processes against one process: element-wise, fixed or refused;
## experiments/sharded_rules.json (50 to 180 s on two cores)
experiments-sharded-rules: $(STAMP)
	$(BIN)/python -m optedu.distributed.sharded_rules

## experiments-NAME (e.g. experiments-warmup): the stored experiment of one chapter (not part of
## the tests), declared in optedu/experiments/NAME.py (`_` written `-`); runs what
## experiments/NAME.jsonl lacks on one worker and resumes where it stopped.
## experiments-list: every such experiment, its chapter, what it runs, its cost and its file.
experiments-list: $(STAMP)
	$(BIN)/python -m optedu.experiments --list

experiments-%: $(STAMP)
	$(BIN)/python -m optedu.experiments $*

clean:
	rm -rf _build _vendor .pytest_cache .hypothesis
