# The two commands of the README:
#   make run    create .venv, install the server, start it (TLS on $(PORT),
#               the web client on $(WEB_PORT) and, on 127.0.0.1, $(WEB_DEV_PORT))
#   make test   create .venv, install the test dependencies, run the tests
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 6697
# The web client: HTTPS on WEB_PORT, plain HTTP on 127.0.0.1:WEB_DEV_PORT.
WEB_PORT ?= 8443
WEB_DEV_PORT ?= 8081
SOURCES := setup.cfg pyproject.toml $(shell find chat twisted -name '*.py' 2>/dev/null) $(wildcard chat/web/static/*)

.PHONY: run test lint coverage clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# A regular (non-editable) install: editable installs hide the twistd plugin
# in twisted/plugins/, so the install is redone whenever a source changes.
$(VENV)/.installed: $(BIN)/python $(SOURCES)
	$(BIN)/python -m pip install -q '.[test,dev]'
	@touch $@

run: $(VENV)/.installed
	@echo "Web client: http://localhost:$(WEB_DEV_PORT)/ (this machine), https://localhost:$(WEB_PORT)/"
	$(BIN)/twistd -n chat --port $(PORT) --web $(WEB_PORT) --web-dev-http $(WEB_DEV_PORT)

test: $(VENV)/.installed
	$(BIN)/coverage run --source=chat -m twisted.trial $(TRIAL_ARGS) tests
	@$(BIN)/coverage report --skip-covered --sort=cover | tail -n 25

lint: $(VENV)/.installed
	$(BIN)/ruff check chat tests twisted bench
	$(BIN)/ruff format --check chat tests twisted bench
	$(BIN)/mypy chat

clean:
	rm -rf $(VENV) build *.egg-info _trial_temp .coverage
