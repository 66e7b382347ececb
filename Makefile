# `make lab` sets everything up and opens JupyterLab on the tutorials.
# `make test` sets everything up and runs every test: lint, types, unit,
# interop, notebooks and the real-browser tests.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.nbws-installed
LAB_ARGS ?=
PLUGIN_DIRS := $(wildcard plugins/*/pyproject.toml)
EDITABLE_PLUGINS := $(foreach p,$(PLUGIN_DIRS),-e $(dir $(p)))
LINT_PATHS := nbws tests $(wildcard plugins benchmarks examples)

.PHONY: install system-deps autobahn-deps lab test check bench conformance wheels clean

# Editable installs stay pure: env -u drops the compiled build's switch (with it, hatch-mypyc would compile
# nbws's hot modules in place, and those extension modules would shadow later edits of their sources).
$(STAMP): pyproject.toml $(PLUGIN_DIRS)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q -U pip
	env -u HATCH_BUILD_HOOKS_ENABLE $(BIN)/python -m pip install -q -e '.[test]' $(EDITABLE_PLUGINS)
	touch $(STAMP)

install: $(STAMP)

# What the lab needs and no more: nbws with JupyterLab (.[lab]) and the example plugins,
# not the test tool chain. A venv made by `make install` already has all of it, and is used as it is.
LAB_STAMP := $(VENV)/.nbws-lab-installed
$(LAB_STAMP): pyproject.toml $(PLUGIN_DIRS)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q -U pip
	env -u HATCH_BUILD_HOOKS_ENABLE $(BIN)/python -m pip install -q -e '.[lab]' $(EDITABLE_PLUGINS)
	touch $(LAB_STAMP)

system-deps:
	scripts/system-deps

# The Autobahn WebSocket test suite (Python 2.7) in .venv-autobahn, for tests/system/test_conformance.py.
autobahn-deps:
	scripts/autobahn-deps

# JupyterLab serves scratch/ (git-ignored), where the tutorials are copied (again when notebooks/ has a
# newer version), and opens the first: running and saving them, Export and Recorder files never touch
# the committed notebooks. Root (CI machines, containers) needs --allow-root.
SCRATCH ?= scratch
lab: $(if $(wildcard $(STAMP)),$(STAMP),$(LAB_STAMP))
	mkdir -p $(SCRATCH)
	cp -u notebooks/*.ipynb $(SCRATCH)/
	cd $(SCRATCH) && $(abspath $(BIN))/jupyter lab --ServerApp.ip=127.0.0.1 $(if $(filter 0,$(shell id -u)),--allow-root) \
		$(LAB_ARGS) $(notdir $(firstword $(wildcard notebooks/01-*.ipynb)))

check: install
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/ruff format --check $(LINT_PATHS)
	$(BIN)/mypy

test: install system-deps autobahn-deps check
	$(BIN)/pytest

bench: install system-deps
	$(BIN)/python -m benchmarks

# Every Autobahn case both ways, nbws against raw websockets (about an hour on 2 cores; `make test` runs a part).
conformance: install autobahn-deps
	$(BIN)/python scripts/conformance --full

# What a release uploads, for this interpreter and platform, into dist/: the pure wheel (py3-none-any, the
# fallback everywhere), the sdist, and the compiled wheel (HATCH_BUILD_HOOKS_ENABLE=1, mypyc; needs a C
# compiler and Python headers). With the venv's tools, no network. Every CPython and platform: cibuildwheel
# ([tool.cibuildwheel] in pyproject.toml; it needs Docker on Linux).
wheels: install
	rm -rf dist
	env -u HATCH_BUILD_HOOKS_ENABLE $(BIN)/python -m pip wheel -q --no-build-isolation --no-index --no-deps -w dist .
	ls dist/nbws-*-py3-none-any.whl
	$(BIN)/python -c "from hatchling.build import build_sdist; build_sdist('dist')"
	scripts/build-compiled build/compiled --wheel-dir dist
	rm -rf build/compiled
	ls -l dist

clean:
	rm -rf dist nbws/*.so nbws/*.pyd *__mypyc.*.so *__mypyc.*.pyd $(VENV) .venv-autobahn tests/interop/node_modules tests/peers/node_modules .pytest_cache .mypy_cache .ruff_cache .hypothesis test-artifacts scratch
