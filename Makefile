# The two commands a user types are `make demo` and `make test`; both install what they need.
# The first of these that is Python >= 3.11 (`make PYTHON=/path/to/python` to choose another).
PYTHON ?= $(shell for p in python3.13 python3.12 python3.11 python3; do \
	$$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null && { echo $$p; break; }; \
	done)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install test lint demo bench clean system-deps

install: $(STAMP)

# The runtime and the dev tools (tests, linters, the wheel builder). A user who only runs the
# guard installs the runtime alone: `pip install .` or `pipx install .` (README).
$(STAMP): pyproject.toml
	@test -n "$(PYTHON)" || { echo "no Python >= 3.11 found (tried python3.13 python3.12" \
		"python3.11 python3); give one with make PYTHON=/path/to/python" >&2; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@test -x $(BIN)/uv || $(BIN)/python -m pip install -q uv
	$(BIN)/uv pip install -q --python $(BIN)/python -e '.[dev]'
	@touch $(STAMP)

lint: install
	$(BIN)/ruff check tradeguard tests bench examples
	$(BIN)/ruff format --check tradeguard tests bench examples
	$(BIN)/mypy
	$(BIN)/lint-imports

# System packages the tests need, installed when missing (Debian; CI runs as root): chromium
# for the dashboard's browser test, promtool (Debian's prometheus; its server is not started)
# for the alert rules and /metrics, systemd-analyze for the unit in deploy/systemd.
system-deps:
	@command -v chromium >/dev/null 2>&1 || { \
		echo "installing chromium for the dashboard's browser test"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }
	@command -v promtool >/dev/null 2>&1 || { \
		echo "installing prometheus (promtool) for the alert rules' tests"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			--no-install-recommends prometheus >/dev/null; }
	@command -v systemd-analyze >/dev/null 2>&1 || { \
		echo "installing systemd (systemd-analyze) for the unit file's test"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			--no-install-recommends systemd >/dev/null; }

test: lint system-deps
	$(BIN)/pytest -q

demo: install
	$(BIN)/tradeguard demo

bench: install
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
