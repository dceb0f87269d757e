# stockstream — the front door. `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

export STOCKSTREAM_CACHE ?= $(HOME)/.cache/stockstream
TARGET_DIR := $(or $(CARGO_TARGET_DIR),$(CURDIR)/target)
export STOCKSTREAM_BIN ?= $(TARGET_DIR)/debug
# The real slice of the dataset used by the tests (and by `make run` when offline).
export STOCKSTREAM_TEST_DATA ?= $(abspath $(CURDIR)/../shared/data/indexProcessed-HSI-1986-2010.csv)
export STOCKSTREAM_SHARED_DATA ?= $(STOCKSTREAM_TEST_DATA)
# The tansu version (and the local stack's ports): deploy/env/ports.env.
include deploy/env/ports.env
export STOCKSTREAM_TANSU ?= $(STOCKSTREAM_CACHE)/tansu-$(TANSU_VERSION)/bin/tansu
export STOCKSTREAM_PYTHON ?= $(STOCKSTREAM_CACHE)/venv/bin/python
export STOCKSTREAM_SCHEMATHESIS ?= $(STOCKSTREAM_CACHE)/venv-schemathesis/bin/schemathesis
export STOCKSTREAM_CHECKOV ?= $(STOCKSTREAM_CACHE)/venv-checkov/bin/checkov
export STOCKSTREAM_BROWSER_PYTHON ?= $(STOCKSTREAM_CACHE)/venv-browser/bin/python

.PHONY: help
help: ## List the targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  %-14s %s\n", $$1, $$2}'

.PHONY: tools
tools: ## Install tansu, the Python test clients, schemathesis, checkov, cloud-init and the browser test (Chromium, selenium) once per machine (into ~/.cache/stockstream)
	@scripts/tools.sh tansu python schemathesis checkov cloud-init browser

.PHONY: build
build: ## Build every service (debug)
	cargo build --workspace --bins

.PHONY: run
run: ## Build, start the local stack, replay DATA (default: the dataset) and wait until it is queryable
	@if [ -z "$$KAFKA_BOOTSTRAP" ]; then scripts/tools.sh tansu; fi
	cargo build --workspace --bins
	@scripts/run.sh

.PHONY: stop
stop: ## Stop the local stack (services drain first; data stay in var/)
	@scripts/stack.sh stop

.PHONY: status
status: ## Show which parts of the local stack run
	@scripts/stack.sh status

.PHONY: data
data: ## Download the original indexProcessed.csv into data/ (checks its git blob id)
	@scripts/data.sh

.PHONY: catalog
catalog: ## Print the local catalog as JSON
	@STOCKSTREAM__LAKE__ROOT=$(CURDIR)/var/lake $(STOCKSTREAM_BIN)/stockstream-glue-crawler show

.PHONY: crawl
crawl: ## Rebuild the local catalog by scanning the lake
	@STOCKSTREAM__LAKE__ROOT=$(CURDIR)/var/lake $(STOCKSTREAM_BIN)/stockstream-glue-crawler crawl

.PHONY: compact
compact: ## Compact the local lake's small files now and print what was merged (the running stack's catalog service does it by itself)
	@STOCKSTREAM__LAKE__ROOT=$(CURDIR)/var/lake $(STOCKSTREAM_BIN)/stockstream-glue-crawler compact

.PHONY: bench-compaction
bench-compaction: tools ## Benchmark: a 1 s-flush lake (>= 20,000 files) before and after compaction (query latency, file count), compaction rows/s, sink rows/s while compacting
	cargo build --release -p stockstream-s3-sink -p stockstream-ingest -p stockstream-glue-crawler -p stockstream-query-api --bins
	STOCKSTREAM_BIN=$(TARGET_DIR)/release TARGET_DIR=$(TARGET_DIR) $(STOCKSTREAM_PYTHON) scripts/bench_compaction.py

.PHONY: bench-ingest
bench-ingest: tools ## Benchmark: our replay vs rdkafka_performance and a confluent-kafka producer (1M rows, BENCH_ROWS=…)
	cargo build --release -p stockstream-ingest --bin stockstream-ingest
	STOCKSTREAM_BIN=$(TARGET_DIR)/release TARGET_DIR=$(TARGET_DIR) $(STOCKSTREAM_PYTHON) scripts/bench_ingest.py

.PHONY: bench-sink
bench-sink: tools ## Benchmark: sink vs a raw confluent-kafka consume (1M rows), peak RSS with 4,000 open paths, encode rate, freshness p99
	cargo build --release -p stockstream-s3-sink -p stockstream-ingest --bins
	STOCKSTREAM_BIN=$(TARGET_DIR)/release TARGET_DIR=$(TARGET_DIR) $(STOCKSTREAM_PYTHON) scripts/bench_sink.py
	cargo test --release -p stockstream-s3-sink --lib -- --ignored --nocapture encode_rate
	cargo test -p stockstream-e2e --test bench_freshness -- --ignored --nocapture

.PHONY: bench-catalog
bench-catalog: export AWS_ACCESS_KEY_ID = stockstream-bench
bench-catalog: export AWS_SECRET_ACCESS_KEY = stockstream-bench
bench-catalog: export AWS_REGION = us-east-1
bench-catalog: export AWS_EC2_METADATA_DISABLED = true
bench-catalog: tools ## Benchmark: time from a new partition's first record to its catalog entry (local and Glue on moto)
	cargo test -p stockstream-e2e --test bench_catalog -- --ignored --nocapture

.PHONY: bench-live
bench-live: tools ## Benchmark: real-time SQL freshness (200 samples) and the quote stream with 50 clients (prints p50/p99)
	cargo test -p stockstream-e2e --test live_sql --test live_load -- --include-ignored --nocapture --test-threads=1

.PHONY: reliability
reliability: tools build ## Fault scenarios on the real local stack (broker and service SIGKILLs, disk full, backpressure, a RELIABILITY_SOAK_MINUTES soak): one table
	$(STOCKSTREAM_PYTHON) scripts/reliability.py

.PHONY: dist
dist: ## Build release binaries and pack them with units, env files, docs and install.sh into dist/*.tar.gz
	cargo build --release --workspace --bins
	@scripts/dist.sh --bin-dir $(TARGET_DIR)/release --out $(CURDIR)/dist

.PHONY: dashboard-fake
dashboard-fake: ## Browser test of the dashboard page against a fake API (no Rust build, ~15 s; docs/dashboard.md)
	@scripts/tools.sh browser
	$(STOCKSTREAM_BROWSER_PYTHON) tests/browser/check_against_fake.py --screenshot $(TARGET_DIR)/dashboard-fake.png

.PHONY: bench-query
bench-query: tools ## Benchmark: query API vs DuckDB on 10M-row lakes (cold/warm/in-process, ratio), 32 concurrent clients, peak RSS
	cargo build --release -p stockstream-query-api --bin stockstream-query-api
	cargo test --release -p stockstream-e2e --test bench_query --no-run
	STOCKSTREAM_BIN=$(TARGET_DIR)/release CARGO_TARGET_DIR=$(TARGET_DIR) $(STOCKSTREAM_PYTHON) scripts/bench_query.py

.PHONY: fmt
fmt: ## Format the code
	cargo fmt --all

.PHONY: lint
lint: ## rustfmt check, clippy with warnings denied, the dependency policy (deny.toml)
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
	python3 scripts/check_deps.py --self-test
	python3 scripts/check_deps.py

# Tests talk to moto, never to AWS: dummy credentials, no instance-metadata lookups.
test: export AWS_ACCESS_KEY_ID = stockstream-test
test: export AWS_SECRET_ACCESS_KEY = stockstream-test
test: export AWS_REGION = us-east-1
test: export AWS_EC2_METADATA_DISABLED = true
.PHONY: test
test: tools lint ## Install what tests need, then run every test (unit, end-to-end, deploy checks)
	@test -f "$(STOCKSTREAM_TEST_DATA)" || { echo "test data missing: $(STOCKSTREAM_TEST_DATA) (set STOCKSTREAM_TEST_DATA to indexProcessed-HSI-1986-2010.csv)"; exit 1; }
	@# Bins and tests in one build: the tests' dev-dependencies switch on features (aws-smithy
	@# test-util, serde's) that would otherwise make `cargo test` rebuild most of the tree again.
	cargo build --workspace --bins --tests
	set -o pipefail; cargo test --workspace -- --test-threads=2 2>&1 | tee $(TARGET_DIR)/test-output.log
	@scripts/verify-deploy.sh
	@awk '/^test result:/ {passed += $$4; failed += $$6} END {printf "tests: %d passed, %d failed\n", passed, failed}' $(TARGET_DIR)/test-output.log

# The fuzz targets, as package:test (docs/fuzzing.md); each runs its properties and its corpus.
FUZZ_TARGETS := stockstream-ingest:fuzz_csv stockstream-common:fuzz_quote_json stockstream-common:fuzz_template stockstream-query-api:fuzz_guard
FUZZ_CASES ?= 20000

.PHONY: fuzz
fuzz: ## Property tests of the CSV reader, quote JSON, partition templates and SQL guard with 20,000 cases each (FUZZ_CASES=…)
	@set -e; for target in $(FUZZ_TARGETS); do \
		package=$${target%%:*}; test=$${target#*:}; \
		echo "==> fuzz $$test ($$package): PROPTEST_CASES=$(FUZZ_CASES) per property"; \
		start=$$(date +%s); \
		PROPTEST_CASES=$(FUZZ_CASES) cargo test -p $$package --test $$test -- --test-threads=2; \
		echo "<== fuzz $$test passed in $$(( $$(date +%s) - start )) s"; \
	done

.PHONY: clean-state
clean-state: stop ## Stop the stack and delete its state (broker data, lake, offsets, logs)
	rm -rf var
