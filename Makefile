# Entry points. Every target works from a fresh clone: those that need Python create .venv and
# install into it, always through constraints.txt (torch==2.13.0, the CPU wheel).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip install -c constraints.txt
# The benchmark environment holds the peer implementations; the package itself never imports them.
BENCH_VENV := .venv-bench
BENCH_PY := $(BENCH_VENV)/bin/python

# Tests and experiments read Tiny Shakespeare from a local copy when there is one beside the checkout.
# (Found by the shell, quoted: make's $(wildcard) and $(abspath) split a path with a space in it.)
SHARED_DATA := $(shell cd "$(CURDIR)/../shared/data" 2>/dev/null && test -f tiny_shakespeare.txt \
                 && echo "$$PWD/tiny_shakespeare.txt")
ifneq ($(SHARED_DATA),)
export TINY_SHAKESPEARE_PATH ?= $(SHARED_DATA)
endif

.PHONY: install test site serve bench bench-gpu notebooks pictures results results-long results-eval-memory results-compressive-cost results-algorithmic results-feedback-options clean

$(VENV)/.installed: setup.py constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PIP) -q -e '.[dev,docs]'
	touch $@

install: $(VENV)/.installed

# KaTeX (math typeset at build time) comes from the npm registry, pinned by utils/package-lock.json.
utils/node_modules/.installed: utils/package.json utils/package-lock.json
	cd utils && npm ci --no-audit --no-fund --loglevel=error
	touch $@

# "Checked by" shows the outcomes `make test` recorded (when the file is there).
site: install utils/node_modules/.installed
	$(PY) -m utils.build --out docs --test-results .test-results/results.json

serve: site
	@echo "Serving the site on http://127.0.0.1:8000"
	$(PY) -m http.server 8000 --bind 127.0.0.1 --directory docs

# tests/conftest.py writes the outcome of every test there, for `make site`.
test: install utils/node_modules/.installed
	$(PY) -m pytest -q tests --test-results .test-results/results.json

# The notebooks as a user runs them: a fresh virtual environment with only the package installed
# (from a built wheel, not the repository), each kernel started outside the repository.
NOTEBOOK_VENV := .venv-notebooks
notebooks:
	rm -rf $(NOTEBOOK_VENV)
	$(PYTHON) -m venv $(NOTEBOOK_VENV)
	$(NOTEBOOK_VENV)/bin/python -m pip install -q --upgrade pip
	$(NOTEBOOK_VENV)/bin/python -m pip install -q -c constraints.txt '.[notebooks]' nbclient nbformat ipykernel
	$(NOTEBOOK_VENV)/bin/python scripts/run_notebooks.py

# The pictures on the paper pages: the attention maps and layer weights of the long-budget models
# (`make results-long` trains them; their checkpoints stay in checkpoints/results-long/) and their loss
# curves, from the history each checkpoint keeps; and the spans of the adaptive span page, from the seed-0
# run of bench.feedback_options' row `span` (trained again once, into checkpoints/feedback-options/).
pictures: install
	$(PY) -m scripts.pictures --long
	$(PY) -m scripts.pictures --spans

$(BENCH_VENV)/.installed: bench/requirements.txt constraints.txt setup.py
	test -x $(BENCH_PY) || $(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_PY) -m pip install -q --upgrade pip
	$(BENCH_PY) -m pip install -q -c constraints.txt -e .
	$(BENCH_PY) -m pip install -q -c constraints.txt -r bench/requirements.txt
	# labml-nn's release has the same top-level name as this package: it goes into its own folder and
	# bench/common.py imports it under a swapped module table (see import_labml_nn_release).
	$(BENCH_PY) -m pip install -q -c constraints.txt --no-deps --target $(BENCH_VENV)/peers -r bench/requirements-nodeps.txt
	touch $@

bench: $(BENCH_VENV)/.installed
	$(BENCH_PY) -m bench.run_all

bench-gpu: $(BENCH_VENV)/.installed
	$(BENCH_PY) -m bench.gpu

# The quick budget over 3 seeds and the papers' ablations over 2 (about an hour on 2 cores).
results: $(BENCH_VENV)/.installed
	$(BENCH_PY) -m bench.results
	$(BENCH_PY) -m bench.ablations

# 15 minutes of training per model, 2 seeds (about two hours on 2 cores); then `make pictures`.
results-long: $(BENCH_VENV)/.installed
	$(BENCH_PY) -m bench.results --budget long --seeds 0 1

# The papers' headline results, one target each (`bench/eval_memory.py`, `bench/compressive_cost.py`).
results-eval-memory: $(BENCH_VENV)/.installed
	$(BENCH_PY) -m bench.eval_memory --train

results-compressive-cost: $(BENCH_VENV)/.installed
	$(BENCH_PY) -m bench.compressive_cost

results-feedback-options: $(BENCH_VENV)/.installed
	$(BENCH_PY) -m bench.feedback_options

# The Feedback paper's code-execution task: both models, 3 seeds, the same steps, two runs at a time
# (under an hour on a shared 2-core machine); bench/reports/algorithmic.md and its picture.
results-algorithmic: install
	$(PY) -m bench.algorithmic

clean:
	rm -rf docs $(VENV) $(BENCH_VENV) $(NOTEBOOK_VENV) utils/node_modules
