# 南充门诊慢特病 assistant. A newcomer needs two commands: `make run` and `make test`.
# Every target installs what it needs first; .ci/run calls `make install` and `make test`.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

VENV   := .venv
PY     := $(VENV)/bin/python
RASA   := PYTHONPATH=$(CURDIR) $(VENV)/bin/rasa
STATE  := .state
MODEL  := $(STATE)/models/assistant.tar.gz
export PYTHONPATH := $(CURDIR)

# Everything a trained model depends on: change any of it and `make run` retrains.
TRAIN_INPUTS := config.yml assistant/build_nlu.py \
	$(shell find domain data knowledge assistant/nlu -type f \( -name '*.yml' -o -name '*.py' -o -name '*.txt' \) -not -path 'data/nlu/generated/*' 2>/dev/null)

.PHONY: help install install-dev generate validate train run test test-conversations test-python clean

help:
	@echo "make run    - install if needed, train if stale, start the assistant (Ctrl-C stops it)"
	@echo "make test   - everything CI runs: data validation, training, conversation tests, pytest"
	@echo "make install / make train / make validate / make clean"

# --- environment -----------------------------------------------------------------
$(PY):
	@python310=$$(scripts/find-python310.sh) && \
	  echo "Creating $(VENV) with $$python310" && \
	  "$$python310" -m venv $(VENV)
	@$(PY) -m pip install --quiet --upgrade pip wheel

$(VENV)/.installed-runtime: requirements.txt | $(PY)
	@$(PY) -c 'import sys; assert sys.version_info[:2] == (3, 10), "$(VENV) is not Python 3.10: rm -rf $(VENV) and retry"'
	$(PY) -m pip install --quiet -r requirements.txt
	@touch $@

$(VENV)/.installed-dev: requirements-dev.txt $(VENV)/.installed-runtime
	$(PY) -m pip install --quiet -r requirements-dev.txt
	@touch $@

install: $(VENV)/.installed-runtime

install-dev: install $(VENV)/.installed-dev

# --- model -----------------------------------------------------------------------
generate: install
	@$(PY) -m assistant.build_nlu

validate: generate
	$(RASA) data validate --domain domain --data data --config config.yml --fail-on-warnings

$(MODEL): $(TRAIN_INPUTS) | install
	@$(PY) -m assistant.build_nlu
	$(RASA) train --domain domain --data data --config config.yml \
	  --out $(STATE)/models --fixed-model-name assistant

train: $(MODEL)

# --- use -------------------------------------------------------------------------
run: install $(MODEL)
	@exec $(PY) -m assistant.stack

# --- check -----------------------------------------------------------------------
test: install-dev validate train test-conversations test-python

test-conversations: $(MODEL)
	$(RASA) test core --model $(MODEL) --stories tests/stories \
	  --fail-on-prediction-errors --out $(STATE)/results/conversations

test-python: install-dev $(MODEL)
	$(PY) -m pytest tests

clean:
	rm -rf $(STATE) data/nlu/generated
