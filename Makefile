# The two commands a newcomer needs: `make run` and `make test`. Both build .venv themselves.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
# `make run PORT=8001` (or HOST, or either in .env): manage.py serve reads them from the
# environment, make passes command-line variables on, and links in answers follow them.

.PHONY: run key test lint bench install install-dev install-local clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: requirements.txt $(BIN)/python
	$(BIN)/python -m pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.installed-dev: requirements-dev.txt requirements.txt $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $@

# The local diffusion backend's packages (torch, diffusers, ...): tests need them, `make run` not.
$(VENV)/.installed-local: requirements-local.txt requirements.txt $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -r requirements-local.txt
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev
install-local: $(VENV)/.installed-local

run: install
	$(BIN)/python manage.py first-key
	$(BIN)/python manage.py serve

# `make key NAME=laptop WORKSPACE=books`: another API key, printed once.
key: install
	$(BIN)/python manage.py create-key --name "$(or $(NAME),key)" --workspace "$(or $(WORKSPACE),default)"

test: install-dev install-local
	$(BIN)/python -m ruff check .
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: install-dev
	$(BIN)/python -m ruff check .
	$(BIN)/python -m ruff format --check .

bench: install-dev install-local
	$(BIN)/python -m bench.run_all

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
