# detbalance — `make demo` (main job) and `make test` do all set-up themselves on a fresh machine.
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.detbalance-setup
SETUP_INPUTS := requirements/constraints.txt setup.py tools/build/setup_env.sh tools/build/install_detectron2.sh \
                tools/build/cxx20
PYTEST_ARGS ?=
DEMO_ARGS ?=
BENCHMARK_ARGS ?=

.PHONY: setup test demo bench benchmark results clean-venv

setup: $(STAMP)

$(STAMP): $(SETUP_INPUTS)
	PYTHON=$(PYTHON) VENV=$(CURDIR)/$(VENV) bash tools/build/setup_env.sh
	@touch $@

test: setup
	$(PY) -m pytest $(PYTEST_ARGS)

demo: setup
	$(PY) tools/benchmark.py demo $(DEMO_ARGS)

bench: setup
	$(PY) tools/bench_losses.py
	$(PY) tools/bench_compute_weights.py

benchmark: setup
	$(PY) tools/benchmark.py run $(BENCHMARK_ARGS)
	$(PY) tools/benchmark.py results

results: setup
	$(PY) tools/benchmark.py results

clean-venv:
	rm -rf $(VENV)
