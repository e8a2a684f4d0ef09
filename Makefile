# Two commands set up a fresh machine and do everything:
#   make vae    train the lab's VAE on FashionMNIST and write its figures
#   make test   run the test suite (gradient checks included)
# Both create the virtual environment .venv and install requirements.txt on first use.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: venv vae ae pca augment bench test exercises grade clean

$(INSTALLED): requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

# The environment alone: then .venv/bin/python runs any script.
venv: $(INSTALLED)

vae: $(INSTALLED)
	$(BIN)/python -m apps.grade --before-training
	$(BIN)/python train_vae.py $(ARGS)

ae: $(INSTALLED)
	$(BIN)/python train_ae.py $(ARGS)

pca: $(INSTALLED)
	$(BIN)/python compare_pca.py $(ARGS)

augment: $(INSTALLED)
	$(BIN)/python augment.py $(ARGS)

bench: $(INSTALLED)
	$(BIN)/python bench.py $(ARGS)

# The lab as exercises: write them to exercises/ (or OUT=folder), then, in that folder, make grade.
exercises: $(INSTALLED)
	$(BIN)/python -m apps.make_exercises --out $(or $(OUT),exercises)

grade: $(INSTALLED)
	$(BIN)/python -m apps.grade $(ARGS)

test: $(INSTALLED)
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) .pytest_cache
