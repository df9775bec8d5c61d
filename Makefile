# The README's commands. `make setup` is idempotent: seconds when the env is up to date.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.ghostlab-installed
PROFILE ?= params/demo.yaml

.PHONY: setup demo test lab clean-outputs

setup: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q -e '.[dev]'
	@touch $@

demo: setup
	$(VENV)/bin/ghostlab run $(PROFILE)

test: setup
	$(PY) -m pytest -q

lab: setup
	$(PY) -m ipykernel install --sys-prefix --name ghostlab --display-name "ghostlab ($(VENV))" >/dev/null
	cd notebooks && ../$(VENV)/bin/jupyter lab $(if $(filter 0,$(shell id -u)),--allow-root)

clean-outputs:
	rm -rf outputs/*/ outputs/_*
