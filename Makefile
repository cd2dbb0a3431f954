# The two commands a new reader needs are `make book` and `make test`; both set up .venv first.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

export PYTHONHASHSEED := 0

.PHONY: setup book test lint unit nbval unpinned site-test lab lab-source outputs bench experiments \
	experiments-quick experiments-sweeps experiments-folklore experiments-lr experiments-flat experiments-lrfree experiments-warmup experiments-wsd experiments-mup experiments-batch experiments-spikes experiments-sharded-rules experiments-shampoo experiments-soap experiments-kron experiments-two-momenta experiments-mars experiments-after-muon experiments-low-memory clean

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

## lint: ruff over the package, the tests and the tools (pyproject.toml's [tool.ruff])
lint: $(STAMP)
	$(BIN)/ruff check .

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

## experiments-folklore: the chapter "The folklore, tested": warmup against none at several rates
## on every base workload, and the best rate per batch size (equal epochs): 840 runs on one
## worker, about 15 minutes on a shared 2-core machine; appends to experiments/folklore.jsonl
## and resumes where it stopped.
experiments-folklore: $(STAMP)
	$(BIN)/python -m optedu.choosing.folklore

## experiments-sweeps: one or two hyperparameters on a fixed grid, the others at their defaults
## (optedu.choosing.sweeps): the learning rate of ten optimizers on the five base workloads, and
## the learning rate against the weight decay; experiments/sweeps.jsonl, resumable
experiments-sweeps: $(STAMP)
	$(BIN)/python -m optedu.choosing.sweeps $(EXPERIMENTS_ARGS)

## experiments-lr: the chapter "Finding the learning rate in practice": the range test of eight
## optimizers on every base workload (three seeds), and 1cycle and ReduceLROnPlateau against
## warmup with cosine (a small rate sweep each, three seeds); one worker, experiments/lr.jsonl,
## resumable
experiments-lr: $(STAMP)
	$(BIN)/python -m optedu.choosing.lr_experiments

## experiments-warmup: the chapter "Why warmup works": the largest peak rate that trains per
## warmup length (gradient descent, Adam, RAdam on the digits MLP, three seeds), and the
## sharpness along runs with and without warmup; one worker, experiments/warmup.jsonl, resumable
experiments-warmup: $(STAMP)
	$(BIN)/python -m optedu.choosing.warmup_runs

## experiments-flat: the chapter "Flat minima and sharpness-aware minimisation": SGD with
## momentum and Adam alone, with SAM and with ASAM, on a grid of rates (five seeds) on a small
## digits problem; sharpness, Hessian trace and test loss at the end; 550 runs on one worker,
## about 25 minutes on a shared 2-core machine; experiments/flat.jsonl, resumable
experiments-flat: $(STAMP)
	$(BIN)/python -m optedu.choosing.flat_runs

## experiments-mup: the chapter "Learning rates that transfer across width": Adam's best rate
## against the width of the digits MLP (64 to 2048), standard parametrisation and µP, 7 rates,
## 3 seeds, 2 budgets; 504 runs on one worker, about 18 minutes; experiments/mup.jsonl
experiments-mup: $(STAMP)
	$(BIN)/python -m optedu.choosing.mup_runs

## experiments-batch: the chapter "How large a batch?": SGD steps to a target loss at batches 4
## to 1024 (each at its best of five rates; digits MLP and logistic regression, three seeds) and
## the gradient noise scale along training; 276 runs on one worker, about 4 minutes;
## experiments/batch.jsonl
experiments-batch: $(STAMP)
	$(BIN)/python -m optedu.choosing.batch_runs

## experiments-wsd: the chapter "Warmup–stable–decay": WSD against cosine at three budgets
## (char transformer, digits MLP, AdamW, three seeds), one stable run branched into decays,
## decay length swept, peak moved; 30 runs on one worker, about 7 minutes; experiments/wsd.jsonl
experiments-wsd: $(STAMP)
	$(BIN)/python -m optedu.choosing.wsd_runs

## experiments-lrfree: the chapter "Learning-rate-free optimizers": D-Adaptation, Prodigy, DoG
## and LDoG against AdamW and schedule-free AdamW tuned over six rates (five seeds) on a small
## digits network; schedules, bias correction and the initial estimate d0 over six orders of
## magnitude; 270 runs on one worker, about 6 minutes; experiments/lrfree.jsonl, resumable
experiments-lrfree: $(STAMP)
	$(BIN)/python -m optedu.choosing.lrfree_runs

## experiments-spikes: the chapter "Loss spikes": a two-block char transformer, Adam at 10x the
## healthy rate, alone and with each remedy, three seeds; 27 runs on one worker, about 2 minutes;
## experiments/spikes.jsonl
experiments-spikes: $(STAMP)
	$(BIN)/python -m optedu.choosing.spike_runs --jobs 1

## experiments-sharded-rules: the chapter "Whole-tensor rules on shards": every optedu optimizer
## under FSDP2 on 2 gloo processes against one process: element-wise, fixed or refused;
## experiments/sharded_rules.json (about 10 s)
experiments-sharded-rules: $(STAMP)
	$(BIN)/python -m optedu.distributed.sharded_rules

## experiments-shampoo: the chapter "Shampoo": Shampoo, Shampoo grafted onto AdamW's step
## length, and AdamW, five rates each, three seeds, on the autoencoder; 45 runs on one worker,
## about 3 minutes; experiments/shampoo.jsonl
experiments-shampoo: $(STAMP)
	$(BIN)/python -m optedu.choosing.shampoo_runs --jobs 1

## experiments-soap: the chapter "SOAP": SOAP against AdamW over the same five rates, the
## refresh period swept at two rates, the exact eigh refresh against the paper's power step
## (digits MLP, three seeds); 78 runs on one worker, about 2 minutes; experiments/soap.jsonl
experiments-soap: $(STAMP)
	$(BIN)/python -m optedu.choosing.soap_runs --jobs 1

## experiments-kron: the chapter "PSGD: fitting a preconditioner": PSGD-Kron against AdamW on
## the digits MLP, four rates each, three seeds; 24 runs on one worker, about 1 minute;
## experiments/kron.jsonl
experiments-kron: $(STAMP)
	$(BIN)/python -m optedu.choosing.kron_runs --jobs 1

## experiments-two-momenta: the chapter "Two momenta": ADOPT, LaProp and AdEMAMix (with and
## without its warmups) against AdamW on the digits MLP, five rates each, three seeds; 75 runs
## on one worker, about 1 minute; experiments/two_momenta.jsonl
experiments-two-momenta: $(STAMP)
	$(BIN)/python -m optedu.choosing.two_momenta_runs --jobs 1

## experiments-mars: the chapter "Variance reduction and caution": MARS (AdamW and Lion forms)
## and cautious AdamW against AdamW on the digits MLP, five rates each, three seeds; 60 runs on
## one worker, about 1 minute; experiments/mars.jsonl
experiments-mars: $(STAMP)
	$(BIN)/python -m optedu.choosing.mars_runs --jobs 1

## experiments-after-muon: the chapter "After Muon": AdamW, Muon, Muon with Polar Express and
## NorMuon over the same seven rates (digits MLP, three seeds); 84 runs on one worker, about
## 10 minutes; experiments/after_muon.jsonl
experiments-after-muon: $(STAMP)
	$(BIN)/python -m optedu.choosing.after_muon_runs --jobs 1

## experiments-low-memory: the chapter "Training in less memory": AdamW, GaLore, APOLLO,
## APOLLO-Mini and Adam-mini on the digits MLP, five rates each, three seeds; 35 runs on one
## worker; experiments/low_memory.jsonl
experiments-low-memory: $(STAMP)
	$(BIN)/python -m optedu.choosing.low_memory_runs --jobs 1

clean:
	rm -rf _build _vendor .pytest_cache .hypothesis
