# The two commands of the README: `make demo` and `make test`. Both build the pinned
# environment in .venv on first use (Python >= 3.12 and pip are all a fresh machine needs).
# The first Python >= 3.12 found among these runs the set-up (or name one: make PYTHON=...).
CANDIDATES := python3.12 python3.13 python3 \
	$(sort $(wildcard $(HOME)/.pyenv/versions/3.1[23]*/bin/python3 \
	/root/.pyenv/versions/3.1[23]*/bin/python3 /usr/local/bin/python3.1[23] /usr/bin/python3.1[23]))
PYTHON ?= $(firstword $(foreach p,$(CANDIDATES),$(shell $(p) -c 'import sys; print(sys.executable if sys.version_info >= (3, 12) else "")' 2>/dev/null)))
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?= -n 2 --dist worksteal

.PHONY: demo test lint format bench clean-venv

$(STAMP): pyproject.toml requirements.lock
	@test -n "$(PYTHON)" || { echo "make: needs Python >= 3.12 (none of: $(CANDIDATES)); set PYTHON=/path/to/python3.12"; exit 2; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q --no-deps -r requirements.lock
	$(BIN)/python -m pip install -q --no-deps -e .
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/gantk flow --workdir runs/demo

test: $(STAMP)
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(STAMP)
	$(BIN)/python benchmarks/gantk_step.py

clean-venv:
	rm -rf $(VENV)
