# Kiln's build, demo and test entry points. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

GO            ?= go
BIN           := bin
KILN          := $(BIN)/kiln
TRAINER_IMAGE := kiln/trainer:dev
WORKFLOWCHECK := go.temporal.io/sdk/contrib/tools/workflowcheck@v0.6.0
TEST_TIMEOUT  ?= 30m
export GOTOOLCHAIN := local

.PHONY: help build images data demo stop test test-short lint bench bench-score clean

help: ## Show this help
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  make %-12s %s\n", $$1, $$2}'

build: ## Build bin/kiln and the reference trainer bin/kiln-trainer
	$(GO) build -o $(KILN) ./cmd/kiln
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN)/kiln-trainer ./containers/trainer

images: build ## Build the kiln/trainer:dev image (FROM scratch, no registry needed)
	rm -rf build/trainer && mkdir -p build/trainer
	cp $(BIN)/kiln-trainer build/trainer/trainer
	cp containers/trainer/Dockerfile.offline build/trainer/Dockerfile
	@if docker info >/dev/null 2>&1; then \
		$(KILN) images build build/trainer -t $(TRAINER_IMAGE); \
	else \
		echo "No Docker engine reachable: skipping $(TRAINER_IMAGE); training will run as a local process."; \
	fi

data: build ## Write the synthetic churn data sets under data/
	$(KILN) demo-data -o data/churn.csv --rows 5000 --seed 1
	$(KILN) demo-data -o data/churn-drifted.csv --rows 5000 --seed 2 --drift 1

demo: images data ## Start the dev stack and run the churn pipeline end to end (canary, drift, retrain)
	./scripts/demo.sh

stop: ## Stop a dev stack started by make demo
	./scripts/demo.sh stop

test: images ## Run every test, including the end-to-end ones against real Temporal and Docker
	$(GO) test -count=1 -timeout $(TEST_TIMEOUT) ./...

test-short: ## Unit tests only (no servers, no containers)
	$(GO) test -short -count=1 ./...

lint: ## go vet, gofmt and Temporal's workflowcheck
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1; }
	$(GO) run $(WORKFLOWCHECK) ./workflows/...

bench: images ## Run the benchmarks (see BENCHMARKS.md)
	$(GO) test -run '^$$' -bench . -benchmem -count 1 ./internal/... ./containers/...
	$(MAKE) bench-score

bench-score: ## Batch scoring, 10M rows Parquet -> Parquet on 1 core, vs XGBoost and scikit-learn
	$(GO) test -run '^$$' -bench ScoreLogistic -benchmem -cpu 1 -count 1 ./activities/
	scripts/bench/score_bench.sh

clean: ## Remove build outputs (keeps .kiln state)
	rm -rf $(BIN) build
