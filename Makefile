# r1-stack: `make demo` and `make test` work on a fresh clone; everything they need is built on the way.
#
# setup   .venv with torch==2.13.0 (the local CPU wheel) installed first, then this project (editable)
#         with its dev extras, then the code sandbox's tools (bubblewrap, prlimit, g++; apt, only if missing)
#         and the deployment tests' Prometheus (apt `prometheus`, only if missing; tests skip without it).
#         Re-runs only when pyproject.toml or the install script changes.
# protos  services/protogen/: Python stubs generated from protos/ (gitignored, never committed).

PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.r1-installed
PROTO_SRC := $(shell find protos -name '*.proto' | sort)
PROTO_OUT := services/protogen
PROTO_STAMP := $(PROTO_OUT)/.generated
PYTEST := $(BIN)/python -m pytest

.PHONY: setup protos test test-fast test-slow demo lint clean

setup: $(STAMP) $(PROTO_STAMP)

$(STAMP): pyproject.toml scripts/install-sandbox-tools.sh scripts/install-test-tools.sh
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) not found: set PYTHON=python3.x (3.11 matches the torch wheel)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check torch==2.13.0
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	bash scripts/install-sandbox-tools.sh
	bash scripts/install-test-tools.sh
	touch $@

protos: $(PROTO_STAMP)

# Protos map to the import path services/protogen/<service>/v1/ (protoc's virtual-path form `-I A=B`),
# so the generated modules never shadow the `r1` library package.
$(PROTO_STAMP): $(PROTO_SRC) $(STAMP)
	rm -rf $(PROTO_OUT) && mkdir -p $(PROTO_OUT)
	$(BIN)/python -m grpc_tools.protoc -I $(PROTO_OUT)=protos/r1 \
		--python_out=. --grpc_python_out=. --pyi_out=. $(PROTO_SRC)
	find $(PROTO_OUT) -type d -exec touch {}/__init__.py \;
	touch $@

test: setup
	$(PYTEST) -q

test-fast: setup
	$(PYTEST) -q -m "not slow"

test-slow: setup
	$(PYTEST) -q -m slow

lint: setup
	$(BIN)/lint-imports

demo: setup
	$(BIN)/r1 demo

clean:
	rm -rf $(PROTO_OUT) .pytest_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
