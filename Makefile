# sdcourse: `make lab` to learn, `make test` to check everything.
# TORCH picks the PyTorch requirement: CI on a CPU-only machine uses `make test TORCH=torch==2.13.0`;
# `make lab TORCH="torch --index-url https://download.pytorch.org/whl/cpu"` picks the CPU wheel
# (TORCH reaches pip as separate words, so pip options work; quote a `>=` inside: TORCH="'torch>=2.1'").
# LAB_ARGS passes options to JupyterLab: `make lab LAB_ARGS="--no-browser --port=8890 --ip=0.0.0.0"`.
PYTHON   ?= python3
VENV     ?= .venv
TORCH    ?= torch
LAB_ARGS ?=
PY       := $(VENV)/bin/python
STAMP    := $(VENV)/.sdcourse-installed
TORCH_REQ := $(VENV)/.sdcourse-torch
export OMP_NUM_THREADS ?= 2

.PHONY: install lab test test-fast notebooks figures benchmark clean FORCE

# The venv is (re)installed when it is missing, when pyproject.toml is newer than the stamp, and
# when TORCH is given (command line or environment) and differs from the requirement recorded at
# the last install. Left at its default, TORCH accepts whichever PyTorch the venv already has.
ifneq ($(origin TORCH),file)
ifneq "$(strip $(TORCH))" "$(strip $(shell cat '$(TORCH_REQ)' 2>/dev/null))"
$(STAMP): FORCE
endif
endif

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install $(TORCH)
	$(PY) -m pip install -e ".[dev]"
	echo '$(subst ','\'',$(TORCH))' > $(TORCH_REQ)
	touch $(STAMP)

FORCE:

install: $(STAMP)

# JupyterLab on notebooks/, as a normal user or as root (scripts/lab.py adds --allow-root only for root).
lab: install
	$(PY) scripts/lab.py $(LAB_ARGS)

# Unit tests, both editions of every notebook under nbval (outputs compared strictly), the browser
# test and the `make lab` test. Two pytest-xdist workers of one thread each (a file stays on one
# worker, as nbval needs; the full-size tests take a lock so that they never run together).
TEST_WORKERS ?= 2
test: install
	OMP_NUM_THREADS=1 $(PY) -m pytest tests notebooks --nbval --nbval-current-env \
		--nbval-sanitize-with notebooks/sanitize.cfg -p no:cacheprovider --durations=15 \
		-n $(TEST_WORKERS) --dist loadfile

# Unit tests only, without the full-size model or the browser.
test-fast: install
	$(PY) -m pytest tests -m "not slow and not browser" -p no:cacheprovider

# Re-execute every notebook and store its outputs (do this after changing a notebook or sdcourse).
# One thread per kernel, as `make test` runs them: two kernels of two threads on two cores ran ~10x
# slower, and the stored numbers must be those nbval recomputes.
notebooks: install
	OMP_NUM_THREADS=1 $(PY) scripts/regenerate_notebooks.py

figures: install
	$(PY) -m sdcourse.figures

benchmark: install
	$(PY) benchmarks/unet_forward.py

clean:
	rm -rf $(VENV) .pytest_cache
