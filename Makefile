# svtree: `make run` tries the example tree, `make test` runs the tests,
# `make install` installs it (PREFIX=/usr/local; DESTDIR stages it for a package).
PYTHON ?= python3
# VENV=.venv-3.13 PYTHON=python3.13: the same targets with another interpreter
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

PREFIX ?= /usr/local
LIBDIR  = $(PREFIX)/lib/svtree
BINDIR  = $(PREFIX)/bin
MANDIR  = $(PREFIX)/share/man
# the programs: the keys of pyproject.toml's [project.scripts], written there once
PROGRAMS = $(shell sed -n '/^\[project\.scripts\]/,/^\[/s/^\([a-z0-9_-]*\) *=.*/\1/p' pyproject.toml)
# man/NAME.N goes to MANDIR/manN/NAME.N
INSTALL_MAN = for page in man/*.[1-8]; do \
	  install -D -m 644 "$$page" "$(DESTDIR)$(MANDIR)/man$${page\#\#*.}/$${page\#\#*/}"; done

.PHONY: run test bench man check clean compile install install-man uninstall

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

# The last line execs svscan so that it is make's own child: GNU make passes
# a SIGTERM on to its children only, and the shell (dash) would not exec it
# itself, so a TERM to make used to end the shell and leave svscan and the
# services running. Now svscan gets it and brings the tree down, as on Ctrl-C.
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
	exec env PATH="$(abspath $(BIN)):$$PATH" $(BIN)/svscan scratch/service

test: compile
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

# the fault suites (svscan, supervise or a logger killed and started again, a
# ./run that cannot start) and the abuse, permission and trust-boundary ones
# alone (make test runs them too)
check: compile
	$(BIN)/python -m pytest -q tests/test_scan_restart.py tests/test_start_errors.py \
	    tests/test_trust.py tests/test_hostile.py

bench: compile
	$(BIN)/python bench/run.py
	$(BIN)/python bench/more.py
	$(BIN)/python bench/faults.py
	$(BIN)/python bench/init.py
	$(BIN)/python bench/container.py --output BENCHMARKS.md
	$(BIN)/python bench/sockets.py --output BENCHMARKS.md

man:
	@for page in man/*.[1-8]; do \
	  LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l -E UTF-8 $$page >/dev/null || exit 1; done

# A venv of its own in LIBDIR, made with $(PYTHON) (it links to that
# interpreter: pick one every user of svtree can run, e.g. PYTHON=/usr/bin/python3),
# holding svtree installed from this tree, not editable: the checkout may go
# afterwards. Its programs are linked into BINDIR, the pages copied to MANDIR.
# A program of the same name already in BINDIR (daemontools' svc, say) is left
# alone and stops the install.
# build/ goes first: setuptools packs whatever it holds, modules since deleted too.
# With DESTDIR, what names the venv's path (script #! lines, pyvenv.cfg, the
# source paths in the byte code) is made to name where the files will be.
install:
	@for p in $(PROGRAMS); do t="$(DESTDIR)$(BINDIR)/$$p"; \
	  if [ -e "$$t" -o -L "$$t" ] && [ "$$(readlink "$$t")" != "$(LIBDIR)/bin/$$p" ]; then \
	    echo "make install: $$t is not svtree's: remove it or choose another PREFIX" >&2; \
	    exit 1; fi; done
	rm -rf build "$(DESTDIR)$(LIBDIR)"
	$(PYTHON) -m venv "$(DESTDIR)$(LIBDIR)"
	"$(DESTDIR)$(LIBDIR)/bin/pip" install --quiet --disable-pip-version-check --no-compile .
	rm -rf build
ifneq ($(DESTDIR),)
	for f in "$(DESTDIR)$(LIBDIR)"/bin/* "$(DESTDIR)$(LIBDIR)/pyvenv.cfg"; do \
	  [ -L "$$f" ] || sed -i 's|$(DESTDIR)$(LIBDIR)|$(LIBDIR)|g' "$$f"; done
endif
	"$(DESTDIR)$(LIBDIR)/bin/python" -m compileall -q $(if $(DESTDIR),-f -s "$(DESTDIR)" -p /) \
	    "$(DESTDIR)$(LIBDIR)/lib" >/dev/null
	mkdir -p "$(DESTDIR)$(BINDIR)"
	for p in $(PROGRAMS); do ln -sfn "$(LIBDIR)/bin/$$p" "$(DESTDIR)$(BINDIR)/$$p"; done
	$(INSTALL_MAN)

# the pages alone: `make install-man PREFIX=~/.local/svtree` after a pip install there
install-man:
	$(INSTALL_MAN)

# removes what install made, and only that: a program in BINDIR that is not
# a link into LIBDIR stays, and so do the directories
uninstall:
	for p in $(PROGRAMS); do t="$(DESTDIR)$(BINDIR)/$$p"; \
	  if [ "$$(readlink "$$t")" = "$(LIBDIR)/bin/$$p" ]; then rm -f "$$t"; fi; done
	for page in man/*.[1-8]; do rm -f "$(DESTDIR)$(MANDIR)/man$${page##*.}/$${page##*/}"; done
	rm -rf "$(DESTDIR)$(LIBDIR)"

clean:
	rm -rf $(VENV) scratch .pytest_cache .hypothesis
