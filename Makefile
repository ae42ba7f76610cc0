# `make demo`: set up the venv if needed, then run the main job on the embedded mini corpus.
# `make test`: set up the venv if needed, then run the whole test suite.
PY := .venv/bin/python

.PHONY: venv demo test lint

venv:
	@bash scripts/setup_venv.sh

demo: venv
	$(PY) -m speechbrain_sslse.corpus.cli --out results/mini_corpus

test: venv
	$(PY) -m pytest

lint: venv
	$(PY) -m ruff check .
