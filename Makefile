# The two commands a user types are `make demo` and `make test`; both install what they need.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install test lint demo bench clean system-deps

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@test -x $(BIN)/uv || $(BIN)/python -m pip install -q uv
	$(BIN)/uv pip install -q --python $(BIN)/python -e '.[dev]'
	@touch $(STAMP)

lint: install
	$(BIN)/ruff check tradeguard tests bench examples
	$(BIN)/ruff format --check tradeguard tests bench examples
	$(BIN)/mypy
	$(BIN)/lint-imports

# System packages the tests need, installed when missing (Debian; CI runs as root).
system-deps:
	@command -v chromium >/dev/null 2>&1 || { \
		echo "installing chromium for the dashboard's browser test"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

test: lint system-deps
	$(BIN)/pytest -q

demo: install
	$(BIN)/tradeguard demo

bench: install
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
