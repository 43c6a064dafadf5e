# `make demo` and `make test` are all a newcomer needs: each creates .venv when
# it is missing and installs the project into it, with the serve and export
# extras (the demo's checkpoints are served and exported by the tests).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# torch==2.13.0 is the CPU build that lies on these machines' disk; a plain
# `torch` would pull a multi-GB CUDA build.
TORCH ?= torch==2.13.0

.PHONY: demo test bench setup browser fashion clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q $(TORCH)
	$(BIN)/pip install -q -e '.[test,serve,export]'
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(BIN)/triptych demo $(DEMO_ARGS)

# The web page's test drives Debian's chromium through chromium-driver: install
# them where they are missing and apt-get exists (CI runs as root; else sudo).
# If that fails the browser test is skipped, saying why.
browser:
	@if ! command -v chromedriver >/dev/null && command -v apt-get >/dev/null; then \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  ($$SUDO apt-get update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver) \
	  || echo "make: could not install chromium and chromium-driver; the browser test will be skipped"; \
	fi

# Fashion-MNIST's four IDX files, for the configs/vision/*-fashion.yaml recipes:
# Debian's dataset-fashion-mnist puts them under /usr/share/datasets/fashion-mnist/.
# Installed where missing and apt-get exists; elsewhere point data.root at the files.
FASHION := /usr/share/datasets/fashion-mnist
fashion:
	@if [ ! -f $(FASHION)/t10k-labels-idx1-ubyte.gz ]; then \
	  if command -v apt-get >/dev/null; then \
	    SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	    ($$SUDO apt-get update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist) \
	    || echo "make: could not install dataset-fashion-mnist; set data.root to a folder holding the four IDX files"; \
	  else \
	    echo "make: no apt-get here to install dataset-fashion-mnist; set data.root to a folder holding the four IDX files"; \
	  fi; \
	fi

test: $(STAMP) browser
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -n 2

bench: $(STAMP) fashion
	$(BIN)/pip install -q -e '.[test,serve,export,bench]'
	for b in $(filter-out benchmarks/cpu_targets.py benchmarks/peer_venv.py,$(wildcard benchmarks/*.py)); do \
		echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) runs
