# Event Stream — the front door. Every target is listed in README.md.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

GO   ?= go
# Every module of go.work (pkg and one per service). A single ./services/...
# pattern does not work: in workspace mode a pattern may not span modules
# from a directory that is not itself a module.
PKGS := $(patsubst $(CURDIR)/%,./%/...,$(shell $(GO) list -m -f '{{.Dir}}'))
CLI  := ./services/eventstream/cmd/eventstream
# Every vet check runs inside `go test -vet=all`, on the export data the race
# build compiles anyway (a separate `go vet` compiled the whole tree once
# more: four of a fresh machine's minutes); go test vets only packages with
# tests, so those without are vetted on their own, with -race so that their
# dependencies are compiled once, for both.
NOTEST_PKGS = $(shell $(GO) list -f '{{if not (or .TestGoFiles .XTestGoFiles)}}{{.ImportPath}}{{end}}' $(PKGS))

# Pinned tools, built with `go install` into a per-user cache that survives
# between runs (a clean machine builds them once; MinIO takes a few minutes).
TOOLS_DIR             ?= $(HOME)/.cache/eventstream/bin
PROTOC_GEN_GO_VERSION := v1.36.11
GOLANGCI_LINT_VERSION := v2.15.0
MINIO_VERSION         := v0.0.0-20260212201848-7aac2a2c5b7c
HELM_VERSION          := v3.22.0

PROTOC_GEN_GO := $(TOOLS_DIR)/.protoc-gen-go-$(PROTOC_GEN_GO_VERSION)
GOLANGCI_LINT := $(TOOLS_DIR)/.golangci-lint-$(GOLANGCI_LINT_VERSION)
MINIO         := $(TOOLS_DIR)/.minio-$(MINIO_VERSION)
HELM          := $(TOOLS_DIR)/.helm-$(HELM_VERSION)

# Tests and generators find the pinned tools (minio, protoc-gen-go, helm) on PATH.
export PATH := $(TOOLS_DIR):$(PATH)

# Where tests leave artifacts worth a look (the console's screenshots).
TEST_OUTPUT_DIR ?= $(CURDIR)/bin/test-output

# Fuzz time per Fuzz target in `make test`, and per-benchmark time in `make bench`.
FUZZTIME  ?= 5s
BENCHTIME ?= 1s

.PHONY: help
help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

.PHONY: run
run: ## start the local stack on 127.0.0.1:8080 (Ctrl-C stops it; data kept in ./.data)
	$(GO) run $(CLI) run

.PHONY: test
# The fault-injection slice runs once, through make chaos (built binaries,
# its table printed, non-zero on any loss), not a second time as TestChaos
# inside the race tests.
test: deps tools images ## everything CI runs: vet, race tests (incl. the make-run smoke test), the chaos slice, fuzzing, generated-code check, chart lint
	$(MAKE) --no-print-directory helm-lint
	$(GO) vet -race $(NOTEST_PKGS)
	EVENTSTREAM_IMAGES=$(CURDIR)/$(IMAGES_DIR) TEST_OUTPUT_DIR=$(TEST_OUTPUT_DIR) $(GO) test -race -vet=all -count=1 -timeout 15m -skip '^TestChaos$$' $(PKGS)
	$(MAKE) --no-print-directory chaos DURATION=$(CHAOS_SLICE) SEED=$(CHAOS_SLICE_SEED)
	FUZZTIME=$(FUZZTIME) services/eventstream/scripts/fuzz.sh $(PKGS)
	$(MAKE) --no-print-directory openapi-lint
	$(MAKE) --no-print-directory check-generate
	@echo "make test: all checks passed"

.PHONY: lint
lint: $(GOLANGCI_LINT) ## golangci-lint with .golangci.yml
	golangci-lint run $(PKGS)

.PHONY: generate
# protoc and the well-known types come from Debian (protobuf-compiler,
# libprotobuf-dev: system-deps), the Go plugin is pinned; check-generate
# ignores the protoc version line, the only thing another protoc changes.
PROTOS := $(shell cd proto && find . -name '*.proto' | sort)
generate: system-deps $(PROTOC_GEN_GO) ## regenerate Go code from proto/ with protoc and the pinned protoc-gen-go
	cd proto && protoc -I . --go_out=../pkg --go_opt=module=github.com/eventstream/eventstream/pkg $(PROTOS)

.PHONY: bench
# The services' logs go to bin/bench-logs/<package>.log (pkg/testenv), not
# between a benchmark's name and its figures; benchtable fails when any
# func Benchmark* of the repository has no row.
bench: ## run every benchmark and print a table of their metrics (raw output in bin/bench.out, service logs in bin/bench-logs)
	@mkdir -p bin
	@rm -rf bin/bench-logs
	$(GO) build -o bin/eventstream $(CLI)
	@status=0; EVENTSTREAM_BENCH_LOGS=$(CURDIR)/bin/bench-logs \
		$(GO) test -p 1 -run '^$$' -bench . -benchtime=$(BENCHTIME) -benchmem -timeout 60m $(PKGS) 2>&1 \
		| tee bin/bench.out || status=$$?; \
	echo; bin/eventstream benchtable --expect . < bin/bench.out || status=1; exit $$status

# --- deployment (deploy/, helm/eventstream, docker-compose.yml) ---------------

# Services with an image; eventstream is the admin CLI (migrate, tenant, token).
IMAGES     := ingest delivery configapi observability eventstream
IMAGES_DIR := bin/images
IMAGE_TAG  ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)

.PHONY: images
images: ## build an OCI image tarball per service into bin/images (static binaries, no container engine)
	@mkdir -p $(IMAGES_DIR)/bin
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags='-s -w -X main.version=$(IMAGE_TAG)' -o $(IMAGES_DIR)/bin/ \
		$(foreach s,$(IMAGES),./services/$(s)/cmd/$(s)) ./deploy/cmd/probe
	$(GO) run ./deploy/cmd/imagebuild -bin $(IMAGES_DIR)/bin -out $(IMAGES_DIR) -tag $(IMAGE_TAG) $(IMAGES)

.PHONY: helm-lint
helm-lint: $(HELM) ## helm lint the chart with its CI values and the example values
	@for f in helm/eventstream/ci/*.yaml helm/eventstream/examples/*.yaml; do \
		echo "helm lint -f $$f"; helm lint --strict --quiet helm/eventstream -f $$f; done

# Fault injection (make chaos): how long faults are injected, the seed of
# their schedule (empty: a random one, printed so the run can be repeated),
# and further flags of `eventstream chaos` (e.g. --hostile=false, --workers 3).
# make test runs a slice of CHAOS_SLICE on seed CHAOS_SLICE_SEED (about 90 s
# in all; 50 s of seed 137 draw a broker restart, a SIGKILL, a reset endpoint,
# a Postgres restart, hostile bodies, a SIGTERM and S3 errors).
DURATION         ?= 2m
SEED             ?=
CHAOS_FLAGS      ?=
CHAOS_SLICE      ?= 50s
CHAOS_SLICE_SEED ?= 137

.PHONY: chaos
chaos: ## fault-injection suite: DURATION of seeded faults (SEED=n repeats a run), then the loss check and its table
	@mkdir -p bin
	CGO_ENABLED=0 $(GO) build -trimpath -o bin/ ./services/delivery/cmd/delivery ./services/ingest/cmd/ingest ./services/configapi/cmd/configapi $(CLI)
	bin/eventstream chaos --duration $(DURATION) $(if $(SEED),--seed $(SEED)) \
		--delivery-bin bin/delivery --ingest-bin bin/ingest --configapi-bin bin/configapi $(CHAOS_FLAGS)

.PHONY: tenant
tenant: ## provision TENANT=<name> in the running local stack; the last line is a bearer token
	@test -n "$(TENANT)" || { echo "usage: make tenant TENANT=<name>" >&2; exit 2; }
	@$(GO) run $(CLI) tenant $(TENANT)

# --- what make test needs -------------------------------------------------

.PHONY: deps
deps: system-deps ## download Go modules and install kcat, protoc, PostgreSQL and Chromium when missing
	$(GO) mod download

# Debian packages: kcat (Kafka interop tests), protoc with the well-known
# types (make generate), PostgreSQL (the test
# harness and the local stack run its binaries) and Chromium (the console's
# browser tests). Installed only when missing; as root directly, otherwise
# through sudo.
.PHONY: system-deps
system-deps:
	@missing=""; \
	command -v kcat > /dev/null || missing="$$missing kcat"; \
	ls /usr/lib/postgresql/*/bin/postgres > /dev/null 2>&1 || command -v postgres > /dev/null || missing="$$missing postgresql"; \
	command -v chromium > /dev/null || command -v chromium-browser > /dev/null || missing="$$missing chromium"; \
	command -v npm > /dev/null || missing="$$missing npm"; \
	command -v protoc > /dev/null || missing="$$missing protobuf-compiler"; \
	[ -f /usr/include/google/protobuf/timestamp.proto ] || missing="$$missing libprotobuf-dev"; \
	if [ -n "$$missing" ]; then \
		sudo=""; [ "$$(id -u)" = 0 ] || sudo="sudo"; \
		echo "installing:$$missing"; \
		$$sudo env DEBIAN_FRONTEND=noninteractive apt-get update -q; \
		$$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing; \
	fi

.PHONY: tools
tools: $(PROTOC_GEN_GO) $(MINIO) $(HELM) ## build the pinned tools into the cache (TOOLS_DIR)

# Each stamp names its version, so bumping a version rebuilds that tool.
$(PROTOC_GEN_GO):
	@mkdir -p $(TOOLS_DIR)
	GOBIN=$(TOOLS_DIR) GOWORK=off $(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)
	@touch $@
$(GOLANGCI_LINT):
	@mkdir -p $(TOOLS_DIR)
	GOBIN=$(TOOLS_DIR) GOWORK=off $(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION)
	@touch $@
$(HELM):
	@mkdir -p $(TOOLS_DIR)
	GOBIN=$(TOOLS_DIR) GOWORK=off $(GO) install helm.sh/helm/v3/cmd/helm@$(HELM_VERSION)
	@touch $@
$(MINIO):
	@mkdir -p $(TOOLS_DIR)
	@echo "building minio $(MINIO_VERSION) (a few minutes, once per machine)"
	GOBIN=$(TOOLS_DIR) GOWORK=off $(GO) install github.com/minio/minio@$(MINIO_VERSION)
	@touch $@

# The observability OpenAPI document must pass Redocly's recommended rules
# with no warning. The CLI is pinned in lint/package-lock.json and installed
# with npm ci (once, and again when the lock file changes). Redocly 1.x:
# it runs on Debian 12's Node.js 18 (2.x needs Node 20.19 or later).
REDOCLY_DIR := services/observability/lint
.PHONY: openapi-lint
openapi-lint: $(REDOCLY_DIR)/node_modules/.package-lock.json ## lint the observability OpenAPI document with the pinned Redocly CLI
	@out="$$(cd $(REDOCLY_DIR) && REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true \
		./node_modules/.bin/redocly lint --extends=recommended --format=stylish ../openapi.yaml 2>&1)" || { echo "$$out"; exit 1; }; \
	if grep -qE 'You have [0-9]+ warnings?' <<< "$$out"; then echo "$$out"; echo "openapi-lint: warnings"; exit 1; fi; \
	echo "openapi-lint: services/observability/openapi.yaml is clean"
$(REDOCLY_DIR)/node_modules/.package-lock.json: $(REDOCLY_DIR)/package-lock.json
	@command -v npm > /dev/null || { echo "npm is required for openapi-lint (Debian: apt-get install npm)" >&2; exit 1; }
	npm ci --prefix $(REDOCLY_DIR) --no-audit --no-fund --loglevel=error
	@touch $@

# Generated code must be what `make generate` produces from proto/.
.PHONY: check-generate
check-generate: generate
	@if git rev-parse --is-inside-work-tree > /dev/null 2>&1; then \
		stale="$$(git status --porcelain -- '*.pb.go' | grep '^??')$$(git diff --stat -I '^//[[:space:]]+protoc[[:space:]]' -- '*.pb.go')"; \
		if [ -n "$$stale" ]; then echo "generated code is not current (run make generate and commit):"; echo "$$stale"; exit 1; fi; \
		echo "generated code is current"; \
	else echo "not a git checkout: generated-code check skipped"; fi
