# `make demo`: set up the venv if needed, then run the main job: train the spectrum-aware
#              vocoder on the embedded mini corpus (quick CPU schedule) and package it.
# `make test`: set up the venv if needed, then run the whole test suite.
PY := $(CURDIR)/.venv/bin/python

.PHONY: venv demo test lint bench

venv:
	@bash scripts/setup_venv.sh

demo: venv
	cd recipes/DNS/enhancement && $(PY) train.py hparams/proposed.yaml

test: venv
	$(PY) -m pytest

lint: venv
	$(PY) -m ruff check .

bench: venv
	$(PY) benchmarks/bench_lobes.py
	$(PY) benchmarks/bench_inference.py
	$(PY) benchmarks/bench_candidates.py
	$(PY) benchmarks/bench_train.py
	$(PY) benchmarks/bench_data.py
