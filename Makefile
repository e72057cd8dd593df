# The README's two commands: `make demo` and `make test`. Both create .venv and install the pinned
# dependencies (pyproject.toml) and the local tools (Kafka classpath, Triton server, Tansu) when
# missing, so a fresh clone needs nothing else.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test install system-deps tools lint clean

demo: install tools
	$(BIN)/modelci demo --start

test: install tools
	$(BIN)/python -m pytest

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip==25.3
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

# Debian packages the real components come from: Redis, Prometheus (+promtool), Java and Maven
# for Apache Kafka. Installed only when missing; needs root (CI and these machines run as root).
system-deps:
	@bash infra/install-system-deps.sh

tools: system-deps install
	$(BIN)/modelci infra install
	$(BIN)/python -m services.drift.scan  # compiles the drift service's kernels into numba's cache

clean:
	-$(BIN)/modelci infra down
	rm -rf .modelci
