# The README's two commands: `make dev` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin

.PHONY: setup dev test lint unit e2e-setup anvil-setup docker-setup test-anvil fuzz bench clean

# bubblewrap is the compute sandbox; without it Tidegate serves everything but compute
# (jobs are refused with the reason), so a failed install is reported, not fatal.
setup: $(VENV)/.installed
	@if ! command -v bwrap >/dev/null; then \
	  echo "setup: installing bubblewrap (the compute sandbox) with apt-get"; \
	  if ! (command -v apt-get >/dev/null && DEBIAN_FRONTEND=noninteractive \
	        apt-get install -y -q bubblewrap >/dev/null); then \
	    echo "setup: could not install bubblewrap: compute jobs will be refused (docs/compute.md)" >&2; \
	  fi; \
	fi
	@# libseccomp2 compiles the jobs' seccomp filter (apt itself depends on it on Debian).
	@if ! ldconfig -p 2>/dev/null | grep -q 'libseccomp\.so\.2'; then \
	  echo "setup: installing libseccomp2 (the compute seccomp filter) with apt-get"; \
	  (command -v apt-get >/dev/null && DEBIAN_FRONTEND=noninteractive \
	    apt-get install -y -q libseccomp2 >/dev/null) || \
	    echo "setup: could not install libseccomp2: jobs run without seccomp (docs/compute.md)" >&2; \
	fi

# pyproject.toml declares ranges; constraints.txt pins the versions CI tests.
$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c constraints.txt -e '.[dev]'
	touch $@

# `tidegate dev` runs anvil (from npm, below); DEV_ARGS e.g. "--data-dir ~/.tidegate-dev" (docs/dev.md).
DEV_ARGS ?=
dev: setup anvil-setup
	$(BIN)/tidegate dev $(DEV_ARGS)

lint: setup
	$(BIN)/ruff check src tests
	$(BIN)/mypy

unit: setup
	$(BIN)/pytest -q

# Real clients (ocean.py, ocean.js) in their own environments: see tests/e2e/README.md.
e2e-setup:
	@bash tests/e2e/setup.sh

# anvil from npm, for running the chain suite against a real JSON-RPC node.
# npm ci only when node_modules is missing or older than the lock file.
anvil-setup:
	@if [ ! -e tools/anvil/node_modules/.package-lock.json ] || \
	    [ tools/anvil/package-lock.json -nt tools/anvil/node_modules/.package-lock.json ]; then \
	  npm ci --no-audit --no-fund --prefix tools/anvil; \
	fi

# A private dockerd (own socket, data and exec roots; no bridge, no iptables) and the
# test images, built offline (busybox-static; Debian with python3 and nodejs from
# mmdebstrap, cached under .cache/docker): tools/dockerd/start.sh, docs/compute.md.
# Without root or apt the Docker engine's tests are skipped with the reason; on CI
# (CI set) a daemon that cannot start fails the run.
docker-setup:
	@bash tools/dockerd/start.sh || { \
	  if [ -n "$$CI" ]; then exit 1; fi; \
	  echo "docker-setup: no test daemon: the Docker engine's tests will be skipped" >&2; }

test-anvil: setup anvil-setup
	TIDEGATE_TEST_CHAIN=anvil $(BIN)/pytest -q -m chain

test: lint e2e-setup anvil-setup docker-setup unit test-anvil

# The schemathesis run of tests/api/test_fuzz.py (25 random cases per operation in
# `make test`) with a bigger budget: FUZZ_EXAMPLES random cases per operation, FUZZ_SEED;
# FUZZ_CHECKS (e.g. all) replaces the checks.
FUZZ_EXAMPLES ?= 300
FUZZ_SEED ?= 16
FUZZ_CHECKS ?=
fuzz: setup
	TIDEGATE_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) TIDEGATE_FUZZ_SEED=$(FUZZ_SEED) \
	  TIDEGATE_FUZZ_CHECKS=$(FUZZ_CHECKS) \
	  $(BIN)/pytest -q -s tests/api/test_fuzz.py

bench: setup
	@# wrk (load generator) and nginx (origin file server) from Debian, when missing.
	@if ! command -v wrk >/dev/null || ! command -v nginx >/dev/null; then \
	  if command -v apt-get >/dev/null; then \
	    apt-get update -q >/dev/null; \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
	      wrk nginx-light curl >/dev/null || echo "bench: apt-get could not install wrk/nginx"; \
	  fi; \
	fi
	@# anvil from npm (the chain); without it the bench uses the in-process chain.
	@$(MAKE) --no-print-directory anvil-setup || echo "bench: no anvil, using the in-process chain"
	$(BIN)/python -m bench.run

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
