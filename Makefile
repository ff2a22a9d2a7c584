# Kiln's build, demo and test entry points. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

GO            ?= go
BIN           := bin
KILN          := $(BIN)/kiln
TRAINER_IMAGE := kiln/trainer:dev
XGBOOST_IMAGE := kiln/xgboost:dev
XGBOOST_BASE  := kiln/xgboost-base:dev
XGBOOST_TAR   := build/xgboost-rootfs.tar
WORKFLOWCHECK := go.temporal.io/sdk/contrib/tools/workflowcheck@v0.6.0
TEST_TIMEOUT  ?= 30m
export GOTOOLCHAIN := local

.PHONY: help build images data demo stop test test-short test-cluster cluster-up cluster-down bench-cluster fuzz lint bench bench-score bench-serve bench-export bench-drift bench-report bench-monitor clean image-xgboost test-python-image bench-gbdt gbdt-xgboost proto runtimes

help: ## Show this help
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  make %-12s %s\n", $$1, $$2}'

build: ## Build bin/kiln and the reference trainer bin/kiln-trainer
	$(GO) build -o $(KILN) ./cmd/kiln
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN)/kiln-trainer ./containers/trainer

# The trainer image is built under a tag named by its content (the trainer
# binary and Dockerfile), written to build/trainer-image, and as kiln/trainer:dev.
# Tests run the content tag (KILN_TRAINER_IMAGE): checkouts sharing one Docker
# engine all rebuild kiln/trainer:dev, but none can change another's content tag.
images: build ## Build the kiln/trainer:dev image (FROM scratch, no registry needed)
	rm -rf build/trainer && mkdir -p build/trainer
	cp $(BIN)/kiln-trainer build/trainer/trainer
	cp containers/trainer/Dockerfile.offline build/trainer/Dockerfile
	@if docker info >/dev/null 2>&1; then \
		tag=kiln/trainer:c$$(cat build/trainer/trainer build/trainer/Dockerfile | sha256sum | cut -c1-16); \
		$(KILN) images build build/trainer -t $$tag && $(KILN) images build build/trainer -t $(TRAINER_IMAGE) && echo $$tag > build/trainer-image; \
	else \
		echo "No Docker engine reachable: skipping $(TRAINER_IMAGE); training will run as a local process."; \
		rm -f build/trainer-image; \
	fi

$(XGBOOST_TAR): containers/xgboost/build-rootfs.sh
	@# Cached: delete $(XGBOOST_TAR) to debootstrap again.
	@if [ -f $@ ]; then touch $@; else containers/xgboost/build-rootfs.sh $@; fi

image-xgboost: build $(XGBOOST_TAR) ## Build kiln/xgboost:dev offline: debootstrap bookworm + python3-xgboost, import, add train.py (root)
	$(KILN) images import $(XGBOOST_TAR) -t $(XGBOOST_BASE) -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
	rm -rf build/xgboost && mkdir -p build/xgboost
	cp containers/xgboost/train.py build/xgboost/train.py
	cp containers/xgboost/Dockerfile.offline build/xgboost/Dockerfile
	$(KILN) images build build/xgboost -t $(XGBOOST_IMAGE)

test-python-image: image-xgboost ## Train and score a GBDT with kiln/xgboost:dev through Kiln's train path (opt-in)
	KILN_TEST_PYTHON_IMAGE=1 $(GO) test -count=1 -timeout $(TEST_TIMEOUT) -run 'TestPythonImage' -v ./activities/

data: build ## Write the synthetic churn data sets under data/
	$(KILN) demo-data -o data/churn.csv --rows 5000 --seed 1
	$(KILN) demo-data -o data/churn-drifted.csv --rows 5000 --seed 2 --drift 1

demo: images data ## Start the dev stack and run the churn pipeline end to end (canary, drift, retrain)
	./scripts/demo.sh

stop: ## Stop a dev stack started by make demo
	./scripts/demo.sh stop

# Predictor runtimes kiln export writes models into (no compiler needed at
# export time): static, stripped, without gRPC (-tags kilnedge).
# The lite runtimes (kiln export --lite; -tags kilnlite) read and write CSV
# and JSON Lines only, with no --serve: about half the size.
RUNTIME_TARGETS ?= linux/amd64 linux/arm64 linux/arm darwin/arm64 windows/amd64 wasip1/wasm
LITE_TARGETS ?= $(RUNTIME_TARGETS)
runtimes: ## Build the predictor runtimes kiln export uses (bin/runtimes; RUNTIME_TARGETS and LITE_TARGETS pick)
	@mkdir -p $(BIN)/runtimes
	@for t in $(RUNTIME_TARGETS); do os=$${t%/*}; arch=$${t#*/}; ext=; \
	  case $$os in windows) ext=.exe;; wasip1) ext=.wasm;; esac; \
	  echo "runtime $$t"; \
	  CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch GOARM=7 $(GO) build -tags kilnedge -trimpath -ldflags='-s -w' \
	    -o $(BIN)/runtimes/kiln-predict-$$os-$$arch$$ext ./cmd/kiln-predict || exit 1; done
	@for t in $(LITE_TARGETS); do os=$${t%/*}; arch=$${t#*/}; ext=; \
	  case $$os in windows) ext=.exe;; wasip1) ext=.wasm;; esac; \
	  echo "lite runtime $$t"; \
	  CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch GOARM=7 $(GO) build -tags 'kilnedge kilnlite' -trimpath -ldflags='-s -w' \
	    -o $(BIN)/runtimes/kiln-predict-lite-$$os-$$arch$$ext ./cmd/kiln-predict || exit 1; done

# The runtimes the export tests run (amd64 natively, arm64 and arm under
# qemu-user, wasm under wazero).
TEST_RUNTIMES := linux/amd64 linux/arm64 linux/arm wasip1/wasm

test: images ## Run every test: unit, end-to-end (real Temporal and Docker), fuzz, and the cluster tests
	$(MAKE) --no-print-directory runtimes RUNTIME_TARGETS="$(TEST_RUNTIMES)" LITE_TARGETS="linux/amd64 wasip1/wasm"
	KILN_RUNTIMES=$(abspath $(BIN))/runtimes KILN_TRAINER_IMAGE=$$(cat build/trainer-image 2>/dev/null) $(GO) test -count=1 -timeout $(TEST_TIMEOUT) ./...
	$(MAKE) --no-print-directory fuzz
	$(MAKE) --no-print-directory test-cluster

# The local cluster of deploy/local: PostgreSQL, the Temporal server as four
# processes, an S3 server, the web UI, two workers with their own homes on
# their own queues and two model servers. See deploy/local/README.md.
CLUSTER_DIR ?= build/cluster
cluster-up: build ## Start the local production-shaped cluster (deploy/local; CLUSTER_DIR, default build/cluster)
	KILN_CLUSTER_DIR=$(abspath $(CLUSTER_DIR)) KILN_WORKER_ARGS="$(if $(wildcard build/trainer-image),--trainer-image $$(cat build/trainer-image))" deploy/local/up.sh

cluster-down: ## Stop the local cluster (add PURGE=1 to delete its directory)
	KILN_CLUSTER_DIR=$(abspath $(CLUSTER_DIR)) deploy/local/down.sh $(if $(PURGE),--purge)

# test-cluster starts its own cluster (in build/cluster-test), runs the
# churn and GBDT pipelines across it while killing workers, the Temporal
# history service and a model server, and stops it again.
TEST_CLUSTER_DIR := $(abspath build/cluster-test)
test-cluster: images ## Start a cluster, run pipelines across it with kill -9 chaos (deploy/local/cluster_test.go), stop it
	KILN_CLUSTER_DIR=$(TEST_CLUSTER_DIR) deploy/local/down.sh --purge >/dev/null 2>&1 || true
	KILN_CLUSTER_DIR=$(TEST_CLUSTER_DIR) KILN_WORKER_ARGS="--trainer-image $$(cat build/trainer-image)" deploy/local/up.sh
	KILN_CLUSTER_ENV=$(TEST_CLUSTER_DIR)/cluster.env KILN_BIN=$(abspath $(KILN)) $(GO) test -count=1 -v -timeout 20m ./deploy/local/ \
	  || { rc=$$?; tail -n 40 $(TEST_CLUSTER_DIR)/logs/*.log; KILN_CLUSTER_DIR=$(TEST_CLUSTER_DIR) deploy/local/down.sh --purge; exit $$rc; }
	KILN_CLUSTER_DIR=$(TEST_CLUSTER_DIR) deploy/local/down.sh --purge

# bench-cluster: CLUSTER_LOAD small pipeline runs at once against a fresh
# local cluster and against the embedded dev server (BENCHMARKS.md).
CLUSTER_LOAD ?= 200
BENCH_CLUSTER_DIR := $(abspath build/cluster-bench)
bench-cluster: images ## CLUSTER_LOAD (200) concurrent small runs on a local cluster and on the embedded dev server
	KILN_CLUSTER_DIR=$(BENCH_CLUSTER_DIR) deploy/local/down.sh --purge >/dev/null 2>&1 || true
	KILN_CLUSTER_DIR=$(BENCH_CLUSTER_DIR) KILN_WORKER_ARGS="--trainer-image $$(cat build/trainer-image)" deploy/local/up.sh
	KILN_CLUSTER_ENV=$(BENCH_CLUSTER_DIR)/cluster.env KILN_CLUSTER_LOAD=$(CLUSTER_LOAD) KILN_BENCH_OUT=$(abspath build/bench-cluster.txt) \
	  $(GO) test -count=1 -v -timeout 30m -run TestClusterLoad ./deploy/local/ \
	  || { rc=$$?; KILN_CLUSTER_DIR=$(BENCH_CLUSTER_DIR) deploy/local/down.sh --purge; exit $$rc; }
	KILN_CLUSTER_DIR=$(BENCH_CLUSTER_DIR) deploy/local/down.sh --purge
	@cat build/bench-cluster.txt

# Fuzz targets of what reads untrusted bytes, each run for FUZZTIME (their
# seed corpora also run in every go test): bundles, XGBoost JSON, predict
# bodies, CSV and JSON Lines ingest, pipeline specs, exported predictors'
# payloads and the wasm modules kiln export rewrites.
FUZZTIME ?= 3s
FUZZ_TARGETS := internal/model:FuzzLoad internal/xgbjson:FuzzParse internal/serving:FuzzPredict \
	internal/dataset:FuzzCSVToParquet internal/dataset:FuzzJSONLToParquet pipelines:FuzzParse \
	internal/edge:FuzzDecode internal/edge/pack:FuzzWasm

fuzz: ## Run each fuzz target for FUZZTIME (default 3s)
	@for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; fn=$${t##*:}; \
		echo "fuzz $$pkg $$fn ($(FUZZTIME))"; \
		$(GO) test ./$$pkg -run '^$$' -fuzz "^$$fn\$$" -fuzztime $(FUZZTIME) >/tmp/kiln-fuzz.$$$$.log 2>&1 || { cat /tmp/kiln-fuzz.$$$$.log; rm -f /tmp/kiln-fuzz.$$$$.log; exit 1; }; \
		rm -f /tmp/kiln-fuzz.$$$$.log; \
	done

test-short: ## Unit tests only (no servers, no containers)
	$(GO) test -short -count=1 ./...

lint: ## go vet, gofmt and Temporal's workflowcheck
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1; }
	$(GO) run $(WORKFLOWCHECK) ./workflows/...

bench: images ## Run the benchmarks (see BENCHMARKS.md)
	$(GO) test -run '^$$' -bench . -benchmem -count 1 $$($(GO) list ./internal/... ./containers/... | grep -v -e /internal/drift -e /internal/report)
	$(MAKE) --no-print-directory bench-gbdt
	$(MAKE) --no-print-directory bench-score
	$(MAKE) --no-print-directory bench-serve
	$(MAKE) --no-print-directory bench-export
	$(MAKE) --no-print-directory bench-drift
	$(MAKE) --no-print-directory bench-report
	$(MAKE) --no-print-directory bench-monitor

# GBDT parity benchmark: the same data (written once by scripts/bench/gbdt_data) and the same
# thread count for Kiln (GOMAXPROCS) and XGBoost hist (nthread).
GBDT_BENCH_DIR ?= build/gbdt-bench
GBDT_THREADS   ?= $(shell nproc)
PYTHON3        ?= /usr/bin/python3

bench-gbdt: ## GBDT training parity: Kiln vs XGBoost hist, same data, same threads (see BENCHMARKS.md)
	$(MAKE) --no-print-directory gbdt-xgboost
	KILN_GBDT_BENCH_DIR=$(abspath $(GBDT_BENCH_DIR)) GOMAXPROCS=$(GBDT_THREADS) $(GO) test -run '^$$' -bench GBDTTrain -benchtime 3x -count 1 ./internal/gbdt/

gbdt-xgboost: # the XGBoost side of bench-gbdt
	$(GO) run ./scripts/bench/gbdt_data -out $(GBDT_BENCH_DIR)
	@if $(PYTHON3) -c 'import xgboost, sklearn' 2>/dev/null; then \
		$(PYTHON3) scripts/bench/gbdt_parity.py $(GBDT_BENCH_DIR) --nthread $(GBDT_THREADS); \
	else \
		echo "$(PYTHON3) has no xgboost/sklearn (apt install python3-xgboost python3-sklearn): skipping the XGBoost peer"; \
	fi

bench-score: ## Batch scoring, 10M rows Parquet -> Parquet on 1 core, vs XGBoost and scikit-learn
	$(GO) test -run '^$$' -bench ScoreLogistic -benchmem -cpu 1 -count 1 ./activities/
	scripts/bench/score_bench.sh

# Serving benchmark: kiln serve (GOMAXPROCS=1, core 0; v1 stable + v2 canary at 10%, request
# log on) against FastAPI + uvicorn + XGBoost from Debian on the same core and the same model
# (100 trees, depth 6, 30 features), one row per request, wrk -t1 -c32 on core 1 (see
# scripts/bench/serve_bench.sh; installs the Debian packages when missing and run as root).
SERVE_BENCH_DIR ?= build/bench-serve

bench-serve: ## Serving one row per request on 1 core: kiln serve (canary on) vs FastAPI + XGBoost: req/s, p50, p99
	KILN_BENCH_SERVE_DIR=$(SERVE_BENCH_DIR) GO=$(GO) scripts/bench/serve_bench.sh

# Edge-export benchmark: the size of kiln export's executable for every target (make runtimes,
# one 100-tree depth-6 GBDT bundle), cold start of the linux/amd64 one on a one-row CSV
# (hyperfine), one-row latency in-process beside XGBoost's inplace_predict, and the C export
# against Go on the same rows; waits for a load average below 1 before measuring (see
# scripts/bench/export_bench.sh; installs hyperfine and python3-xgboost when missing, as root).
EXPORT_BENCH_DIR ?= build/bench-export

bench-export: ## Edge export: executable size per target, cold start, one-row latency vs XGBoost, C vs Go throughput
	KILN_EXPORT_BENCH_DIR=$(EXPORT_BENCH_DIR) GO=$(GO) scripts/bench/export_bench.sh

# Drift benchmark: Kiln's binned and exact drift tests on 1M rows x 100 numeric columns on one
# core, and SciPy (ks_2samp + wasserstein_distance) on the same shapes in the same run. SciPy
# takes ~1.5 s per column, so it runs DRIFT_SCIPY_COLUMNS columns (its per-column time is what
# compares); Kiln's statistics on the benchmark data are checked against SciPy's to 1e-6.
DRIFT_SCIPY_COLUMNS ?= 10

bench-drift: ## Drift tests, 1M rows x 100 numeric columns on 1 core, vs SciPy on the same data
	GOMAXPROCS=1 $(GO) test -run '^$$' -bench 'Drift' -cpu 1 -benchtime 1x -count 1 ./internal/drift/
	@if $(PYTHON3) -c 'import scipy' 2>/dev/null; then \
		$(PYTHON3) scripts/bench/drift_scipy.py time --columns $(DRIFT_SCIPY_COLUMNS); \
		d=$$(mktemp -d) && $(GO) run ./scripts/bench/drift_data -dir $$d -columns 3 && $(PYTHON3) scripts/bench/drift_scipy.py check $$d; rc=$$?; rm -rf $$d; exit $$rc; \
	else \
		echo "$(PYTHON3) has no SciPy (apt install python3-scipy): skipping the peer"; \
	fi

# Nightly-report benchmark: report.Build + RenderHTML over 10M scored rows x 30 features on one
# core. The data are generated once by BenchmarkReport10M and cached under REPORT_BENCH_DIR.
REPORT_BENCH_DIR ?= build/bench-report

bench-report: ## Nightly report over 10M scored rows x 30 features on 1 core: time, peak RSS, HTML size
	KILN_REPORT_BENCH_DIR=$(abspath $(REPORT_BENCH_DIR)) GO=$(GO) scripts/bench/report_bench.sh

# Monitor-window benchmark: one MonitorWindow over 1M served rows x 30 features in 10 request log
# files, 500k labels in 5 pushed batches, on one core (see scripts/bench/monitor_bench.sh).
MONITOR_BENCH_DIR ?= build/bench-monitor

bench-monitor: ## Monitor window over 1M served rows x 30 features, 500k labels, on 1 core: time, rows/s, peak RSS
	KILN_MONITOR_BENCH_DIR=$(abspath $(MONITOR_BENCH_DIR)) GO=$(GO) scripts/bench/monitor_bench.sh

# The Open Inference Protocol v2 gRPC code (internal/serving/inferencepb) is generated from KServe's
# grpc_predict_v2.proto and committed, so building and testing need no protoc. The plugins' versions
# match the module graph's google.golang.org/protobuf and google.golang.org/grpc.
PROTOC             ?= protoc
PROTO_DIR          := internal/serving/inferencepb
PROTO_GO_PACKAGE   := github.com/kiln-ml/kiln/$(PROTO_DIR)
PROTOC_GEN_GO      := google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
PROTOC_GEN_GO_GRPC := google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.6.2

proto: ## Regenerate internal/serving/inferencepb from grpc_predict_v2.proto (needs protoc: apt install protobuf-compiler)
	@command -v $(PROTOC) >/dev/null || { echo "no $(PROTOC): apt-get install protobuf-compiler"; exit 1; }
	d=$$(mktemp -d) && trap 'rm -rf $$d' EXIT && \
	GOBIN=$$d $(GO) install $(PROTOC_GEN_GO) && GOBIN=$$d $(GO) install $(PROTOC_GEN_GO_GRPC) && \
	PATH=$$d:$$PATH $(PROTOC) -I $(PROTO_DIR) \
		--go_out=$(PROTO_DIR) --go_opt=paths=source_relative --go_opt='Mgrpc_predict_v2.proto=$(PROTO_GO_PACKAGE);inferencepb' \
		--go-grpc_out=$(PROTO_DIR) --go-grpc_opt=paths=source_relative --go-grpc_opt='Mgrpc_predict_v2.proto=$(PROTO_GO_PACKAGE);inferencepb' \
		grpc_predict_v2.proto

clean: ## Remove build outputs (keeps .kiln state)
	rm -rf $(BIN) build
