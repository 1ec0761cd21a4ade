# make serve      install (first time) and serve the committed models on http://127.0.0.1:8000
# make test       lint, then every test: fast loop, subprocess/browser tests, reliability suite, containers last
# make test-fast  the quick loop: no subprocess TensorFlow, no browser, no containers
# make lint       ruff, ruff format --check, mypy
# make fixtures   rebuild the tests' committed model stores after a change to training (tests/utils/stores.py)
# make lock       re-resolve requirements*.lock to the newest releases pyproject.toml allows
VENV ?= .venv
PY := $(VENV)/bin/python
FAST := not slow and not browser and not container and not reliability and not distributed

PROTO := app/protocols/inference.proto
STUBS := app/protocols/inference_pb2.py

.PHONY: install serve test test-fast lint fixtures lock bench-train bench-serve
install: $(VENV)/.installed $(STUBS)

# Installs exactly what the lockfile pins; the project itself goes in editable, without re-resolving.
$(VENV)/.installed: requirements-dev.lock pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-dev.lock
	$(PY) -m pip install -q --no-deps -e .
	touch $@

# The gRPC messages, generated from the protocol file we wrote (not committed; the image generates its own).
$(STUBS): $(PROTO) $(VENV)/.installed
	$(PY) -m grpc_tools.protoc -I . --python_out=. --pyi_out=. $(PROTO)

serve: install
	MODELS_DIR=models $(PY) -m app

lint: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy

# Two workers (the cores here), each starting on half of the tests in file order and taking over the tail of the
# other's queue when its own runs dry: one file-at-a-time worker idled ~9 s while the other ran the last heavy
# file (docs/benchmarks.md, stop 48). A file's module fixtures are built twice only when its tests are split so.
# The session's fixture stores are trained by one worker for all (tests/conftest.py). TEST_WORKERS=0: one process.
TEST_WORKERS ?= 2
test-fast: install
	$(PY) -m pytest -m "$(FAST)" -n $(TEST_WORKERS) --dist worksteal

fixtures: install
	$(PY) -m tests.utils.stores

test: lint test-fast
	$(PY) -m pytest -m "(slow or browser) and not reliability"
	$(PY) -m pytest -m reliability -s
	$(PY) -m pytest -m distributed -s
	$(PY) -m pytest -m container -s

# The runtime lock is resolved inside the dev lock, so the image runs exactly the versions the tests ran.
lock: install
	$(PY) -m pip install -q uv
	$(VENV)/bin/uv pip compile pyproject.toml --extra train --extra test --upgrade --python-version 3.11 \
		--python-platform x86_64-unknown-linux-gnu -o requirements-dev.lock
	$(VENV)/bin/uv pip compile pyproject.toml --extra train --python-version 3.11 \
		--python-platform x86_64-unknown-linux-gnu --constraints requirements-dev.lock -o requirements.lock
	$(VENV)/bin/uv pip compile pyproject.toml --python-version 3.11 --python-platform x86_64-unknown-linux-gnu \
		--constraints requirements-dev.lock -o requirements-serve.lock

bench-train: install
	$(PY) bench/train_throughput.py

bench-serve: install
	$(PY) bench/serve_throughput.py
