# clipbranches: every task of the project, one target each. `make help` lists them.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

PYTHON ?= python3
VENV := $(CURDIR)/.venv
PY := $(VENV)/bin/python
# Stamps live inside the venv: deleting .venv resets every set-up step with it.
STAMPS := $(VENV)/.stamps
# The venv's tools come first, so maturin builds against (and installs into) the venv.
export PATH := $(VENV)/bin:$(PATH)
export VIRTUAL_ENV := $(VENV)

RUST_SOURCES := Cargo.toml Cargo.lock $(shell find rust -path '*/fuzz' -prune -o \( -name '*.rs' -o -name Cargo.toml \) -print)
FUZZ_SECONDS ?= 60
BENCH_ARGS ?=
# Arguments of `make demo`, e.g. ARGS=--no-tui or ARGS="--dataset fashion-mnist --limit 2000".
ARGS ?=

.PHONY: help setup develop data hooks test lint format rust-test py-test wheel wheel-check fuzz bench demo clean

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

# --- set-up (idempotent: stamps make a second run a no-op) ---------------------------------

$(STAMPS)/venv: pyproject.toml
	@mkdir -p $(STAMPS)
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade "pip>=25.1"
	$(PY) -m pip install --quiet --group dev --group full
	@touch $@

$(STAMPS)/develop: $(STAMPS)/venv $(RUST_SOURCES) pyproject.toml tui/pyproject.toml
	maturin develop --release --locked --quiet
	$(PY) -m pip install --quiet --no-deps -e tui  # the terminal UI (its dependencies: group full)
	@touch $@

setup: $(STAMPS)/develop ## Create .venv, install dependencies, build the native core into it

# The real data sets the demo and its tests use, and the browser the web page's test drives
# (Debian's chromium and its chromedriver: test tools that download their own browser cannot
# work offline): Debian packages, installed here (as root, or with sudo), never by the library
# (clipbranches.datasets only says what is missing).
DATA_PACKAGES := dataset-fashion-mnist openclipart-png openclipart-svg chromium chromium-driver
data: ## Install the Debian packages the tests need (Fashion-MNIST, OpenClipArt, chromium + chromium-driver)
	@missing=$$(for p in $(DATA_PACKAGES); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || echo $$p; done); \
	if [ -z "$$missing" ]; then echo "data: $(DATA_PACKAGES) installed"; exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then sudo=""; elif command -v sudo >/dev/null; then sudo="sudo"; else \
	  echo "make data: the Debian packages $$missing are missing and installing them needs root:" >&2; \
	  echo "  apt-get update && apt-get install -y --no-install-recommends $$missing" >&2; exit 1; fi; \
	echo "data: installing $$missing"; \
	$$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq --no-install-recommends $$missing >/dev/null

develop: setup ## Same as setup (rebuilds the native core when Rust sources changed)

# --- checks ----------------------------------------------------------------------------------

test: lint rust-test py-test wheel-check ## Set everything up and run every check (what CI runs)
	@echo "make test: all checks passed"

hooks: $(STAMPS)/venv ## Install the git hooks of .pre-commit-config.yaml (make lint on commit, the tests on push)
	pre-commit install

format: $(STAMPS)/venv ## Format and auto-fix in place: rustfmt, ruff format, ruff's safe fixes
	cargo fmt --all
	ruff check --fix --quiet python tests benchmarks tui
	ruff format --quiet python tests benchmarks tui

lint: $(STAMPS)/develop ## rustfmt, clippy (pedantic, -D warnings), ruff, mypy and stubtest
	pre-commit validate-config .pre-commit-config.yaml
	cargo fmt --all --check
	cargo clippy --workspace --all-targets --locked -- -D warnings
	ruff check python tests benchmarks tui
	ruff format --check python tests benchmarks tui
	mypy
	mypy tui/clipbranches_tui
	$(PY) -m mypy.stubtest clipbranches._core

rust-test: ## cargo test of every crate (unit, property and integration tests)
	cargo test --workspace --locked --quiet

py-test: $(STAMPS)/develop data ## pytest over tests/ and the terminal UI's tui/tests (installs the data packages first)
	pytest -q
	pytest -q tui/tests

# --- packaging -------------------------------------------------------------------------------

wheel: $(STAMPS)/venv ## Build the abi3 wheel (CPython >= 3.10) and the terminal UI's wheel into dist/
	rm -rf dist
	maturin build --release --locked --quiet --out dist
	$(PY) -m pip wheel --quiet --no-deps --wheel-dir dist ./tui
	@ls dist/*.whl

CORE_WHEEL = $(firstword $(wildcard dist/clipbranches-[0-9]*.whl))
# The all extra needs torch, and PyPI's Linux torch is the CUDA build: gigabytes to download and
# unpack on every run. So the all venv borrows the project venv's own torch, torchvision and
# their triton/nvidia/cuda wheels: tests/torch_farm.py links exactly those packages' folders
# into target/wheel-check-all-torch (outside the venv, so pip never uninstalls through the
# links), names it in a .pth, and pins them in a constraints file, so pip counts torch as
# installed and fetches only the rest. Nothing else of .venv is visible (not its editable
# clipbranches): the check still runs the wheels. The venv comes from $(PY), the CPython torch
# was built for.
ALL_VENV := target/wheel-check-all
ALL_TORCH := target/wheel-check-all-torch
wheel-check: wheel ## Install the wheels into throwaway venvs (bare; tui extra; all extras) and use them from outside the repo
	rm -rf target/wheel-check target/wheel-check-tui $(ALL_VENV) $(ALL_TORCH)
	$(PYTHON) -m venv target/wheel-check
	target/wheel-check/bin/python -m pip install --quiet $(CORE_WHEEL)
	cd target && wheel-check/bin/python $(CURDIR)/tests/wheel_smoke.py
	$(PYTHON) -m venv target/wheel-check-tui
	target/wheel-check-tui/bin/python -m pip install --quiet --find-links dist "$(CORE_WHEEL)[tui]"
	target/wheel-check-tui/bin/clipbranches tui --help >/dev/null
	target/wheel-check-tui/bin/python -c "from importlib.metadata import entry_points as e; (p,) = e(group='clipbranches.ui', name='tui'); p.load(); print('tui extra OK')"
	$(PY) -m venv $(ALL_VENV)
	$(PY) tests/torch_farm.py $(ALL_TORCH) $(ALL_VENV)
	$(ALL_VENV)/bin/python -m pip install --quiet --find-links dist -c $(ALL_TORCH)/constraints.txt "$(CORE_WHEEL)[all]"
	cd target && wheel-check-all/bin/python -c "import clipbranches, torch; print(clipbranches.__file__, torch.__file__)"
	cd target && wheel-check-all/bin/python $(CURDIR)/tests/wheel_smoke_all.py

# --- fuzzing, benchmarks, demo ---------------------------------------------------------------

FUZZ_TARGETS := manifest open_catalog
# cargo-fuzz needs nightly-only flags; RUSTC_BOOTSTRAP lets the one stable toolchain accept them.
fuzz: ## Fuzz every parser of on-disk bytes for FUZZ_SECONDS each (installs cargo-fuzz into target/tools)
	@test -x target/tools/bin/cargo-fuzz || cargo install --locked --quiet --root target/tools cargo-fuzz
	@for t in $(FUZZ_TARGETS); do \
	  mkdir -p rust/store/fuzz/corpus/$$t && cp -n rust/store/fuzz/seeds/$$t/* rust/store/fuzz/corpus/$$t/; \
	  echo "== fuzz target $$t, $(FUZZ_SECONDS) s"; \
	  (cd rust/store && RUSTC_BOOTSTRAP=1 $(CURDIR)/target/tools/bin/cargo-fuzz run $$t -- \
	    -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 2>&1 | grep -E 'stat::number_of_executed_units|stat::new_units_added|Done|ERROR|panicked|SUMMARY'); \
	done
	@echo "== fuzz target items (Python: mutated items.parquet through Catalog.open), $(FUZZ_SECONDS) s"
	$(PY) benchmarks/fuzz_items.py $(FUZZ_SECONDS) 2>/dev/null

bench: $(STAMPS)/develop ## Print the store and index benchmark tables (BENCH_ARGS=--large for 100M items)
	$(PY) benchmarks/store.py $(BENCH_ARGS)
	$(PY) benchmarks/index.py $(BENCH_ARGS)

demo: $(STAMPS)/develop data ## Build the demo catalog (OpenClipArt, offline towers) and open the UI (ARGS=--no-tui: text round)
	$(PY) -m clipbranches.cli demo $(ARGS)

clean: ## Remove build outputs, the venv and stamps
	rm -rf target dist $(VENV)
