# make repro:             set up and rebuild every result at the committed scale (`dvc repro`)
# make repro SCALE=smoke: the whole pipeline at another scale (smoke | paper) in a scratch workspace,
#                         scratch/pipeline-SCALE/ (this checkout, uncommitted edits included, sharing the DVC cache):
#                         nothing here changes; its results are under scratch/pipeline-SCALE/results/SCALE/
# make test:              set up and run the tests (unit tests + every notebook under nbval at smoke scale)
# make bench:             set up and measure speed (results/default/benchmarks/)
# make push / make pull:  the DVC-cached outputs (rollouts, checkpoints, replay buffers) to / from the default
#                         DVC remote (.dvc/config: the local directory ../dvc-remote beside the checkout, unless pointed elsewhere)
VENV ?= .venv
PY := $(VENV)/bin/python
# dvc's stage commands call `python` and `papermill`: put the venv first on PATH
RUN := PATH="$(abspath $(VENV))/bin:$$PATH"
# the scale `dvc repro` runs in place (results/default and the README tables: wmlib.params.COMMITTED_SCALE)
PARAMS_SCALE := $(shell sed -n 's/^scale: *//p' params.yaml)
SCALE ?= $(PARAMS_SCALE)
WORKSPACE := scratch/pipeline-$(SCALE)

.PHONY: setup repro test bench push pull

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet --no-compile -e ".[test,ray]"
	@# pip byte-compiles the ~21,000 installed files on one core (half of setup's 3 minutes); compileall uses every
	@# core. Like pip it skips a file that does not compile (torch ships one for Python 3.12 only), hence || true.
	$(PY) -m compileall -q -j 0 $(VENV)/lib > /dev/null 2>&1 || true
	touch $@

repro: setup
ifeq ($(SCALE),$(PARAMS_SCALE))
	$(RUN) dvc repro
else
	rm -rf $(WORKSPACE) && git worktree prune
	ref=$$(git stash create) && git worktree add --detach $(WORKSPACE) $${ref:-HEAD}
	cache=$$($(RUN) dvc cache dir) && cd $(WORKSPACE) && sed -i 's/^scale: .*/scale: $(SCALE)/' params.yaml \
		&& $(RUN) dvc cache dir --local "$$cache" && $(RUN) dvc repro
	@echo "the $(SCALE) pipeline's results: $(WORKSPACE)/results/$(SCALE)/"
endif

# two pytest workers (pytest-xdist), each on one torch thread: at smoke size every op is overhead-bound, so two
# single-threaded processes do nearly twice the work of one with two threads (notebooks/conftest.py keeps each
# notebook chain on one worker, in order); the 20 slowest tests and notebook cells are listed at the end, to profile
# CI's time
TEST_WORKERS ?= 2
test: setup
	WMLIB_SCALE=smoke OMP_NUM_THREADS=1 $(RUN) python -m pytest -n $(TEST_WORKERS) --dist loadgroup --nbval-lax \
		--durations=20 -p no:cacheprovider tests notebooks

bench: setup
	$(RUN) dvc repro benchmarks benchmarks_doom benchmarks_mujoco benchmarks_dreamer

push: setup
	$(RUN) dvc push

pull: setup
	$(RUN) dvc pull
