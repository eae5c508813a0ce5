# detbalance — `make demo` (main job) and `make test` do all set-up themselves on a fresh machine.
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.detbalance-setup
SETUP_INPUTS := requirements/constraints.txt setup.py tools/build/setup_env.sh tools/build/install_detectron2.sh \
                tools/build/cxx20 tools/build/detectron2_placeholder_C.py
# detectron2 in .venv: v0.6 (default) or upstream main built with its C++ ops from DETECTRON2_SRC (a source folder,
# a tarball of one, or a git URL): make setup DETECTRON2=main DETECTRON2_SRC=https://github.com/facebookresearch/detectron2
DETECTRON2 ?= v0.6
DETECTRON2_SRC ?=
D2_VARIANT := $(VENV)/.detbalance-detectron2
# test-detectron2-main: the detectron2 tests again, against main built into a separate folder (PYTHONPATH)
D2MAIN_SRC ?= ../shared/vendor/detectron2-main-02b5c4e2.tar.gz
D2MAIN_DIR := build/detectron2-main
D2MAIN_TESTS := tests/adapter_detectron2 tests/smoke tests/reliability tests/demo tests/workflow/test_train_net.py \
                tests/workflow/test_train_net_distributed.py tests/workflow/test_environment.py -k "not mmdet"
PYTEST_ARGS ?=
DEMO_ARGS ?=
BENCHMARK_ARGS ?= --plan

.PHONY: setup test test-fast lint typecheck test-detectron2-main demo bench benchmark results clean-venv FORCE

setup: $(STAMP)

$(STAMP): $(SETUP_INPUTS) $(D2_VARIANT)
	PYTHON=$(PYTHON) VENV=$(CURDIR)/$(VENV) DETECTRON2=$(DETECTRON2) DETECTRON2_SRC=$(DETECTRON2_SRC) \
	  bash tools/build/setup_env.sh
	@touch $@

# rewritten (and so rebuilding the venv's detectron2) only when the chosen detectron2 changes
$(D2_VARIANT): FORCE
	@mkdir -p $(VENV)
	@echo "$(DETECTRON2) $(DETECTRON2_SRC)" | cmp -s - $@ || echo "$(DETECTRON2) $(DETECTRON2_SRC)" > $@

test: setup
	$(PY) -m pytest $(PYTEST_ARGS)

# the fast lane: everything not marked slow (full-size configs, multi-model loops, training runs, subprocesses)
test-fast: setup
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

# ruff (settings in pyproject.toml): lint, then the formatter in check mode
lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# mypy on the framework-free losses and weights (settings in pyproject.toml)
typecheck: setup
	$(VENV)/bin/mypy

test-detectron2-main: setup
	@if [ ! -e "$(D2MAIN_SRC)" ]; then \
	  if [ "$$DETBALANCE_REQUIRE_SHARED" = 1 ]; then echo "error: $(D2MAIN_SRC) is absent (DETBALANCE_REQUIRE_SHARED=1)" >&2; exit 1; fi; \
	  echo "test-detectron2-main skipped: $(D2MAIN_SRC) is absent"; exit 0; fi; \
	start=$$(date +%s); \
	bash tools/build/install_detectron2.sh $(CURDIR)/$(VENV) main $(D2MAIN_SRC) $(CURDIR)/$(D2MAIN_DIR) && \
	echo "detectron2 main ready in $$(( $$(date +%s) - start )) s" && \
	PYTHONPATH=$(CURDIR)/$(D2MAIN_DIR) DETBALANCE_EXPECT_DETECTRON2=main $(PY) -m pytest $(D2MAIN_TESTS) $(PYTEST_ARGS) && \
	echo "test-detectron2-main took $$(( $$(date +%s) - start )) s"

demo: setup
	$(PY) tools/benchmark.py demo $(DEMO_ARGS)

bench: setup
	$(PY) tools/bench_losses.py
	$(PY) tools/bench_step.py
	$(PY) tools/bench_compute_weights.py

benchmark: setup
	$(PY) tools/benchmark.py run $(BENCHMARK_ARGS)
	$(PY) tools/benchmark.py results

results: setup
	$(PY) tools/benchmark.py results

clean-venv:
	rm -rf $(VENV)
