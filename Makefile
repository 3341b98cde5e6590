# Two commands: `make run` and `make test`. Everything else is for developers.
PYTHON ?= python3
VENV ?= .venv
VPY := $(VENV)/bin/python
PYTEST_WORKERS ?= 2

.PHONY: run test test-gpu lint postgres-server screenshots package clean-venv

$(VENV)/.python-ok:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Marginalia needs Python 3.11 or newer; found " + sys.version.split()[0])'
	$(PYTHON) -m venv $(VENV)
	@touch $@

# uv installs what pip would, from the same registry and under the same cap on torch (pip's constraint file,
# which uv does not read by itself), in 26 s instead of 64 s on two cores: it unpacks the 5 GB of torch's
# wheels in parallel. Where uv cannot be had or fails, pip does the install as before.
PIP_CONSTRAINT_FILE := $(shell $(PYTHON) -m pip config list 2>/dev/null | sed -n "s/^[^=]*\.constraint='\(.*\)'$$/\1/p" | tail -1)
define install_into_venv
	{ $(VPY) -m pip install --quiet uv && \
	  $(VENV)/bin/uv pip install --quiet --python $(VPY) $(if $(PIP_CONSTRAINT_FILE),--constraint "$(PIP_CONSTRAINT_FILE)") $(1); } \
	|| $(VPY) -m pip install --quiet --no-compile $(1)
endef

$(VENV)/.installed: pyproject.toml $(VENV)/.python-ok
	$(call install_into_venv,-e .)
	@touch $@

# One install for the app and its test tools (a clean checkout's `make test` starts here). No byte-compiling
# at install (the 6 GB would take half a minute): tests/warm_bytecode.py compiles what is imported, once.
$(VENV)/.installed-dev: pyproject.toml $(VENV)/.python-ok
	$(call install_into_venv,-e ".[dev]")
	# iiif-prezi3 (the tests read exported manifests with its models) caps Pillow at 12.0, which would hold the
	# app's Pillow back from its security releases: its models need no Pillow, so it comes without its pins.
	$(call install_into_venv,--no-deps "iiif-prezi3~=3.1")
	PYTHONDONTWRITEBYTECODE= QT_QPA_PLATFORM=offscreen $(VPY) -m tests.warm_bytecode
	@touch $(VENV)/.installed $@

run: $(VENV)/.installed
	$(VPY) main.py

lint: $(VENV)/.installed-dev
	$(VENV)/bin/lint-imports pyproject.toml

# The team-project tests start a PostgreSQL server of their own (tests/postgres_server.py) from Debian's server
# binaries: installed here where they are missing (CI's machine starts without them), with apt as root.
postgres-server:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 || \
	  { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	        postgresql >/dev/null; } ; } || \
	  { echo "PostgreSQL's server binaries are missing: install Debian's 'postgresql' package (or set \
MARGINALIA_PG_BIN to a folder holding initdb and postgres)"; exit 1; }

# Bytecode caches are written whatever the environment says (PYTHONDONTWRITEBYTECODE): otherwise each CLI and
# bench process that the tests start compiles the same modules again. The benches share one worker (one warm
# start, tests/bench_zygote.py); the ten slowest tests end the report.
test: lint postgres-server
	PYTHONDONTWRITEBYTECODE= QT_QPA_PLATFORM=offscreen $(VPY) -m pytest -n $(PYTEST_WORKERS) --dist loadgroup -q \
		--durations=10

# The model tests with every model on the GPU (their assertions then check the GPU paths); needs CUDA.
GPU_MODEL_TESTS := tests/test_text.py tests/test_hi_sam_model.py tests/test_detection.py tests/test_attention.py \
	tests/test_sam.py tests/test_sam2.py tests/test_retrieval.py tests/test_text_tower.py tests/test_models_adapters.py \
	tests/test_estimates.py
test-gpu: $(VENV)/.installed-dev
	MARGINALIA_TEST_DEVICE=cuda QT_QPA_PLATFORM=offscreen $(VPY) -m pytest -q -rfE $(GPU_MODEL_TESTS)

$(VENV)/.installed-package: pyproject.toml $(VENV)/.installed-dev
	$(call install_into_venv,-e ".[package]")
	@touch $@

# The Linux .deb and portable .tar.gz in dist/, smoke-tested (packaging/README.md). Slow: not part of test.
package: $(VENV)/.installed-package
	PYTHON=$(abspath $(VPY)) packaging/linux/build.sh dist

screenshots: $(VENV)/.installed
	QT_QPA_PLATFORM=offscreen $(VPY) docs/screenshots.py docs/screenshots

clean-venv:
	rm -rf $(VENV)
