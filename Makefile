# The two commands a newcomer needs: `make run` and `make test`. Both build .venv themselves.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
# `make run PORT=8001` (or HOST, or either in .env): manage.py serve reads them from the
# environment, make passes command-line variables on, and links in answers follow them.

.PHONY: run key test lint bench install install-dev install-local clean cluster cluster-stop cluster-status

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

# The scaled topology on this machine, no Docker (issue 13): PostgreSQL, redis-server, a local S3
# (moto), `manage.py migrate`, two API processes and two workers, all on 127.0.0.1; state, pids
# and logs in .cluster/. `make cluster API_PORTS=9001,9002` if 8001/8002 are taken.
cluster: install-dev
	$(BIN)/python -m cluster.run start --api-ports "$(or $(API_PORTS),8001,8002)"

cluster-stop:
	$(BIN)/python -m cluster.run stop

cluster-status:
	$(BIN)/python -m cluster.run status

test: install-dev install-local
	$(BIN)/python -m ruff check .
	$(BIN)/python -m pytest -n auto $(PYTEST_ARGS)

lint: install-dev
	$(BIN)/python -m ruff check .
	$(BIN)/python -m ruff format --check .

bench: install-dev install-local
	$(BIN)/python -m bench.run_all

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
