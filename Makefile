# Quarry: `make run` starts the daemon on this host, `make test` installs everything and runs the whole suite.
PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
QUARRY  = $(VENV)/bin/quarry
STAMP   = $(VENV)/.installed

.PHONY: install run shell test test-fast servers bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

# The daemon on the example config, writing results, status logs and state under ./var (Ctrl-C stops it).
run: $(STAMP)
	$(QUARRY) run --config_path=config/quarry.conf --database_path=var/db --logger_path=var/log

# The interactive shell on this host (osqueryi's meta-commands; `.help`).
shell: $(STAMP)
	$(QUARRY) shell

# Install and build the real servers the shipper tests need (cached outside the checkout).
servers:
	bash tests/servers/setup.sh

# The command CI runs (.ci/run): every test, real servers included.
test: $(STAMP) servers
	$(PY) -m pytest -q

# Everything that needs no real server, for a quick loop while editing.
test-fast: $(STAMP)
	$(PY) -m pytest -q -m 'not realserver'

# Every benchmark (real servers included), then BENCHMARKS.md and bench/results/*.png.
# BENCH_ARGS passes options, e.g. `make bench BENCH_ARGS="--quick --only file,pipeline"`.
bench: $(STAMP) servers
	$(PY) -m pip install -q -e '.[bench]'
	$(PY) -m bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
