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

# two workers, then the tests that time the GUI or real-time audio alone (a second worker's load skews them)
test: setup
	QT_QPA_PLATFORM=offscreen $(VENV)/python -m pytest -q -n 2 -m "not slow and not serial and not audio_device"
	QT_QPA_PLATFORM=offscreen $(VENV)/python -m pytest -q -m "not slow and (serial or audio_device)"

package: setup
	bash packaging/build.sh

bench: setup
	$(VENV)/python bench/bench_features.py

clean:
	rm -rf .venv build dist *.egg-info .pytest_cache
