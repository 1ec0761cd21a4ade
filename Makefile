# make serve   install (first time) and serve the committed models on http://127.0.0.1:8000
# make test    install (first time) and run every test; the container tests run last
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: install serve test lint bench-train bench-serve
install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $@

serve: install
	MODELS_DIR=models $(PY) -m uvicorn app.main:app --host 127.0.0.1 --port 8000

test: install
	$(PY) -m ruff check .
	$(PY) -m pytest -m "not container"
	$(PY) -m pytest -m container -s

bench-train: install
	$(PY) bench/train_throughput.py

bench-serve: install
	$(PY) bench/serve_throughput.py
