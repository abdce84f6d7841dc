# make demo  - set up, build the demo library if absent and open the app on it (no display: print its summary)
# make test  - set up and run the test suite (lint, import contracts, tests)
# make package - build the desktop app folder dist/musicemb/ with PyInstaller (slow: minutes)
.PHONY: setup demo test lint bench package clean
VENV := .venv/bin

setup:
	@bash scripts/setup.sh

demo: setup
	$(VENV)/musicemb demo

lint: setup
	$(VENV)/ruff check .
	$(VENV)/lint-imports

test: setup
	QT_QPA_PLATFORM=offscreen $(VENV)/python -m pytest -q

package: setup
	bash packaging/build.sh

bench: setup
	$(VENV)/python bench/bench_features.py

clean:
	rm -rf .venv build dist *.egg-info .pytest_cache
