# make repro: set up and rebuild every result (`dvc repro`, at the scale in params.yaml)
# make test:  set up and run the tests (unit tests + every notebook under nbval at smoke scale)
# make bench: set up and measure speed (results/benchmarks/)
VENV ?= .venv
PY := $(VENV)/bin/python
# dvc's stage commands call `python` and `papermill`: put the venv first on PATH
RUN := PATH="$(abspath $(VENV))/bin:$$PATH"

.PHONY: setup repro test bench

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test,ray]"
	touch $@

repro: setup
	$(RUN) dvc repro

test: setup
	WMLIB_SCALE=smoke $(RUN) python -m pytest --nbval-lax -p no:cacheprovider tests notebooks

bench: setup
	$(RUN) dvc repro benchmarks benchmarks_doom benchmarks_mujoco benchmarks_dreamer
