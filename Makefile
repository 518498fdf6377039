# The two commands (README): `make demo` and `make test`. Each sets everything up first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup browser demo test lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,postgres,mysql]'
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(BIN)/notifier demo

# Chromium for the browser test of the preview gallery (tests/test_gallery.py); installing it needs root.
browser:
	@command -v chromium >/dev/null || if [ "$$(id -u)" = 0 ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	else \
		echo "chromium is not installed and installing it needs root (sudo apt-get install -y chromium);"; \
		echo "the browser test of the preview gallery will be skipped."; \
	fi

test: $(STAMP) browser
	$(BIN)/ruff check notifier tests bench examples
	$(BIN)/mypy notifier
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check notifier tests bench examples
	$(BIN)/mypy notifier

bench: $(STAMP)
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) demo-out .pytest_cache .ruff_cache .mypy_cache
