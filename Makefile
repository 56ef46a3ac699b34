# ttlive: two commands on a fresh machine. `make run` and `make test`; the rest are conveniences.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
EXTRAS  ?= train,test,dev,ray
ARGS    ?=
TEST_WORKERS ?= 2  # pytest-xdist workers; each test file runs whole on one of them (its fixtures once)

.PHONY: run test bench lint typecheck install clean sweep swarm

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip wheel

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e ".[$(EXTRAS)]"
	touch $(STAMP)

install: $(STAMP)

## make run: a full simulated trading session against the deterministic Alpaca fake.
run: $(STAMP)
	$(BIN)/ttlive run $(ARGS)

## make test: installs everything (incl. train/test extras) and runs the whole suite.
test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/mypy
	$(BIN)/pytest -q -p no:cacheprovider -n $(TEST_WORKERS) --dist loadfile $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .

typecheck: $(STAMP)
	$(BIN)/mypy

## make sweep: the chaos scenarios (a fault plan, a crash or an operator action) over SEEDS on a local process
## pool. A failing run is printed with the one command that replays it; runs/sweep/sweep.json has every outcome.
SEEDS ?= 1..200
CHAOS := ambiguous_submits api_degradation connectivity_lost crash_restart disconnect_storm dropped_updates \
	duplicated_reordered_updates halt_survives_restart manual_kill_reset mute_stream rate_limit_storm \
	reconciliation_drift server_errors
sweep: $(STAMP)
	$(BIN)/ttlive sim --seeds $(SEEDS) $(addprefix scenarios/,$(addsuffix .toml,$(CHAOS))) --out runs/sweep $(ARGS)

## make swarm: swarm testing, not part of `make test`: RUNS randomly generated worlds (session, symbols, account,
## policy, limits, a random subset of every fault) on 2 workers. Each world is a scenario in runs/swarm/worlds/ that
## `ttlive sim` replays; a failure is printed with its replay command and shrunk to <name>.min.toml.
RUNS ?= 10000
SWARM_SEED ?= 1
swarm: $(STAMP)
	$(BIN)/ttlive swarm --runs $(RUNS) --seed $(SWARM_SEED) --workers 2 --out runs/swarm $(ARGS)

## make bench: writes BENCHMARKS.md and bench-results.json. NautilusTrader (the side-by-side peer) lives in its
## own venv: it wants pandas<3, which the main venv need not be pinned to.
NAUTILUS_VENV := .venv-nautilus
bench: $(STAMP)
	test -x $(NAUTILUS_VENV)/bin/python || ($(PY) -m venv $(NAUTILUS_VENV) && \
		$(NAUTILUS_VENV)/bin/pip install --quiet "nautilus-trader==1.221.0")
	$(BIN)/python -m tools.bench --nautilus-python $(NAUTILUS_VENV)/bin/python $(ARGS)

clean:
	rm -rf $(VENV) $(NAUTILUS_VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
