# make demo  - set up and build the demo library (prints its summary)
# make test  - set up and run the test suite (lint, import contracts, tests)
.PHONY: setup demo test lint bench clean
VENV := .venv/bin

setup:
	@bash scripts/setup.sh

demo: setup
	$(VENV)/musicemb demo --no-gui

lint: setup
	$(VENV)/ruff check .
	$(VENV)/lint-imports

test: setup
	QT_QPA_PLATFORM=offscreen $(VENV)/python -m pytest -q

bench: setup
	$(VENV)/python bench/bench_features.py

clean:
	rm -rf .venv build dist *.egg-info .pytest_cache
