# svtree: `make run` tries the example tree, `make test` runs the tests.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test bench man check clean compile

# compat mode: a plain .pth path instead of an import hook, which would cost
# svc/svstat/svok ~10 ms at every start; compileall: byte code even where
# PYTHONDONTWRITEBYTECODE is set, for the same reason.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check \
	    --config-settings editable_mode=compat -e '.[test]'
	touch $@

compile: $(STAMP)
	@$(BIN)/python -m compileall -q svtree >/dev/null

run: compile
	rm -rf scratch/service && mkdir -p scratch && cp -R service.example scratch/service
	@echo "svscan is supervising scratch/service (Ctrl-C brings it down). In another shell:"
	@echo "  . $(BIN)/activate"
	@echo "  svstat scratch/service/*/ scratch/service/clock/log"
	@echo "  svtree status scratch/service    # the richer view"
	@echo "  svtree logs -f scratch/service/clock"
	@echo "  svc -u scratch/service/idle      # start the normally-down service"
	@echo "  svc -d scratch/service/clock     # stop the clock"
	@echo "  svok scratch/service/clock && echo supervised"
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/svscan scratch/service

test: compile
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

# the fault, abuse, permission and trust-boundary suites alone (make test runs them too)
check: compile
	$(BIN)/python -m pytest -q tests/test_faults.py tests/test_trust.py tests/test_hostile.py

bench: compile
	$(BIN)/python bench/run.py
	$(BIN)/python bench/more.py
	$(BIN)/python bench/faults.py
	$(BIN)/python bench/init.py

man:
	@for page in man/*.[1-8]; do \
	  LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l -E UTF-8 $$page >/dev/null || exit 1; done

clean:
	rm -rf $(VENV) scratch .pytest_cache .hypothesis
