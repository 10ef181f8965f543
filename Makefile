# sdcourse: `make lab` to learn, `make test` to check everything.
# TORCH picks the PyTorch requirement: CI on a CPU-only machine uses `make test TORCH=torch==2.13.0`.
PYTHON ?= python3
VENV   ?= .venv
TORCH  ?= torch
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.sdcourse-installed
export OMP_NUM_THREADS ?= 2

.PHONY: install lab test test-fast notebooks figures benchmark clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install "$(TORCH)"
	$(PY) -m pip install -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

lab: install
	$(VENV)/bin/jupyter lab notebooks/

# Unit tests, every notebook under nbval (outputs compared strictly), and the browser test.
test: install
	$(PY) -m pytest tests notebooks --nbval --nbval-current-env \
		--nbval-sanitize-with notebooks/sanitize.cfg -p no:cacheprovider --durations=10

# Unit tests only, without the full-size model or the browser.
test-fast: install
	$(PY) -m pytest tests -m "not slow and not browser" -p no:cacheprovider

# Re-execute every notebook and store its outputs (do this after changing a notebook or sdcourse).
notebooks: install
	$(PY) scripts/regenerate_notebooks.py

figures: install
	$(PY) -m sdcourse.figures

benchmark: install
	$(PY) benchmarks/unet_forward.py

clean:
	rm -rf $(VENV) .pytest_cache
