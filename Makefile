# auditpipe: build, test and run the whole pipeline.
#
#   make run     start the pipeline on embedded infrastructure (Kafka, Schema
#                Registry, ClickHouse, OpenAI simulator) and watch events land
#   make test    every test of every module, with -race and -shuffle=on, plus
#                the drift checks (GOWORK=off builds, gofmt, example configs)
#   make soak    the long chaos soak (SOAK_DURATION=30m per broker) on kfake
#                and Apache Kafka: faults while events flow, then exactly once
#   make images  the services' OCI images (linux/amd64, linux/arm64), built
#                without a container runtime, into bin/images (deploy/README.md)
#   make deploy-test  the production path for real: the images in podman, the
#                chart in podman kube play and on a real kube-apiserver with
#                Helm, the alert rules through promtool (root; podman, runc,
#                catatonit installed: .ci/run installs them)
#
# Both fetch what they need first (`make deps`): Go modules, the ClickHouse
# engine (libchdb, from the npm registry, sha512-verified) and, when Java 17
# is installed, Apache Kafka's jars (from Maven Central, checksums verified).

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
GO ?= go
MODULES := schemas pkg poller enricher loader e2e deploy
SERVICES := poller enricher loader
TOOLS := chserver openaisim devstack
BIN := $(CURDIR)/bin
CACHE := $(CURDIR)/.cache
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X github.com/auditpipe/auditpipe/pkg/service.Version=$(VERSION)
REVISION ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
# Every time written into the images: the last commit's, so that the same
# tree gives the same image digests.
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || echo 0)
STATICCHECK_VERSION := v0.8.2
# One logging style: slog attributes, never loose key-value pairs.
SLOGLINT_VERSION := v0.12.0
# Extra flags for go test, e.g. make test TESTFLAGS='-run TestPoller -v'.
TESTFLAGS ?=
TEST_TIMEOUT ?= 30m

.PHONY: all build images deploy-test soak test unit-test drift-check check-configs lint bench deps deps-go deps-chdb deps-kafka run clean help

all: build

help:
	@sed -n '1,20p' Makefile

## build: every binary into bin/
build:
	@mkdir -p $(BIN)
	@for s in $(SERVICES); do \
		echo "==> building bin/$$s"; \
		(cd $$s && $(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/$$s ./cmd/$$s); \
	done
	@for t in $(TOOLS); do \
		if [ -d e2e/cmd/$$t ]; then \
			echo "==> building bin/$$t"; \
			(cd e2e && $(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/$$t ./cmd/$$t); \
		fi; \
	done

## images: one OCI image per service and platform, reproducible (same tree,
## same digests): bin/images/oci/<service> (OCI layouts), bin/images/
## <service>-linux-<arch>.tar (docker load), bin/images/digests.txt. The tag
## is the chart's appVersion (deploy/helm/auditpipe/Chart.yaml), the tag the
## chart deploys by default; IMAGE_TAG=x overrides it (then helm --set image.tag=x).
IMAGE_TAG ?=
IMAGE_PLATFORMS ?= linux/amd64,linux/arm64
images:
	@cd deploy && SOURCE_DATE_EPOCH=$(SOURCE_DATE_EPOCH) $(GO) run ./cmd/images \
		-root .. -out $(BIN)/images -platforms $(IMAGE_PLATFORMS) -revision $(REVISION) $(if $(IMAGE_TAG),-version $(IMAGE_TAG))

## deploy-test: the production path, exercised for real (deploy/README.md):
## images loaded into podman and run against the dev stack's pieces, the
## rendered chart in `podman kube play`, the chart installed, upgraded and
## uninstalled with Helm on kube-apiserver + etcd (built from source into
## ~/.cache/auditpipe/kube once, ~10 CPU-minutes), promtool on the alerts,
## podman-compose on the compose project.
## The tests run in a private network namespace, offline.
PROMTOOL ?= $(shell command -v promtool 2>/dev/null || echo $(CACHE)/prometheus/usr/bin/promtool)
PODMAN_COMPOSE_VERSION := 1.6.0
DEPLOY_TEST_TIMEOUT ?= 30m
deploy-test: deps-chdb
	@for c in podman runc catatonit unshare; do command -v $$c >/dev/null || { echo "!!! $$c is missing: apt-get install podman runc catatonit (.ci/run does it)"; exit 1; }; done
	@if [ ! -x "$(PROMTOOL)" ]; then \
		echo "==> fetching promtool (Debian's prometheus package, unpacked into .cache/prometheus)"; \
		mkdir -p $(CACHE)/prometheus && cd $(CACHE)/prometheus && apt-get download -q prometheus && dpkg-deb -x prometheus_*.deb .; \
	fi
	@if [ ! -f $(CACHE)/podman-compose-$(PODMAN_COMPOSE_VERSION)/podman_compose.py ]; then \
		echo "==> installing podman-compose $(PODMAN_COMPOSE_VERSION) (PyPI) into .cache"; \
		python3 -m pip install -q --disable-pip-version-check --target $(CACHE)/podman-compose-$(PODMAN_COMPOSE_VERSION) podman-compose==$(PODMAN_COMPOSE_VERSION); \
	fi
	@echo "==> make images (linux/amd64)"
	@$(MAKE) --no-print-directory images IMAGE_PLATFORMS=linux/amd64
	@echo "==> kube-apiserver, etcd and the CRDs (deploy/kube)"
	@cd deploy && $(GO) run ./cmd/kubetools -root .. >/dev/null
	@echo "==> compiling the deploy tests"
	@mkdir -p $(CACHE) && cd deploy && $(GO) test -c -tags deploytest -o $(CACHE)/deploytest.test ./deploytest
	@echo "==> running them in a private network namespace; full log in .cache/deploy-test.log"
	@unshare -n bash -c 'ip link set lo up && cd deploy/deploytest && \
		GOPROXY=off PROMTOOL=$(PROMTOOL) AUDITPIPE_IMAGES=$(BIN)/images PODMAN_COMPOSE=$(CACHE)/podman-compose-$(PODMAN_COMPOSE_VERSION) \
		$(CACHE)/deploytest.test -test.v -test.timeout $(DEPLOY_TEST_TIMEOUT)' 2>&1 | \
		tee $(CACHE)/deploy-test.log | grep --line-buffered -E '^(=== RUN|--- |PASS|FAIL|ok )|^\s+[a-z_]+_test.go:|^deploytest:|^==> |^    (kube-apiserver|etcd):'

## deps: everything the tests and `make run` need
deps: deps-go deps-chdb deps-kafka

deps-go:
	@echo "==> fetching Go modules"
	@for m in $(MODULES); do (cd $$m && $(GO) mod download); done

deps-chdb:
	@echo "==> ensuring the ClickHouse engine (libchdb 26.7) and its web pages' scripts (uPlot, lz-string) are in the cache"
	@cd e2e && $(GO) run ./cmd/chserver -fetch

deps-kafka:
	@if java -version >/dev/null 2>&1; then \
		echo "==> ensuring Apache Kafka's jars are in the cache"; \
		cd e2e && $(GO) run ./kafkabroker/cmd/kafkafetch; \
	else \
		echo "!!! ============================================================ !!!"; \
		echo "!!! Java 17 was not found: the Apache Kafka tests will be SKIPPED. !!!"; \
		echo "!!! Install it (apt-get install openjdk-17-jre-headless) to run   !!!"; \
		echo "!!! them; .ci/run installs it so CI always runs them.             !!!"; \
		echo "!!! ============================================================ !!!"; \
	fi

## test: all tests, race detector on, order shuffled, plus drift checks
test: deps drift-check unit-test check-configs

unit-test:
	@for m in $(MODULES); do \
		echo "==> go test $$m"; \
		(cd $$m && $(GO) test -race -shuffle=on -timeout $(TEST_TIMEOUT) $(TESTFLAGS) ./...); \
	done

## drift-check: the workspace must not hide module drift; code is gofmt'ed
## and logs with slog attributes
drift-check:
	@echo "==> gofmt"
	@out=$$(gofmt -l $(MODULES)); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	@for m in $(MODULES); do \
		echo "==> GOWORK=off build and vet $$m"; \
		(cd $$m && GOWORK=off $(GO) build ./... && GOWORK=off $(GO) vet ./...); \
	done
	@echo "==> sloglint -attr-only (slog attributes, never key-value pairs)"
	@GOBIN=$(CACHE)/bin $(GO) install go-simpler.org/sloglint/cmd/sloglint@$(SLOGLINT_VERSION)
	@for m in $(MODULES); do (cd $$m && $(CACHE)/bin/sloglint -attr-only ./...); done

## check-configs: the example configurations in deploy/config are valid
## (secrets never sit in those files: the poller's admin key comes from env)
check-configs:
	@for s in $(SERVICES); do \
		if [ -f deploy/config/$$s.yaml ]; then \
			echo "==> $$s --check-config --config deploy/config/$$s.yaml"; \
			(cd $$s && AUDITPIPE_POLLER_SOURCES__0__ADMIN_KEY=sk-admin-example $(GO) run ./cmd/$$s --check-config --config ../deploy/config/$$s.yaml >/dev/null); \
		fi; \
	done

## lint: gofmt, go vet and staticcheck over every module
lint:
	@out=$$(gofmt -l $(MODULES)); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	@GOBIN=$(CACHE)/bin $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	@for m in $(MODULES); do \
		echo "==> vet + staticcheck $$m"; \
		(cd $$m && $(GO) vet ./... && $(CACHE)/bin/staticcheck ./...); \
	done

## bench: every benchmark (figures are recorded in the docs)
bench: deps
	@for m in $(MODULES); do \
		echo "==> go test -bench $$m"; \
		(cd $$m && $(GO) test -run '^$$' -bench . -benchmem -timeout 60m ./...); \
	done

## soak: the long chaos soak, on kfake and on Apache Kafka (SOAK_DURATION of
## faults on each; SOAK_SEEDS=a,b,c replays seeds). Each run logs its report.
SOAK_DURATION ?= 30m
SOAK_SEEDS ?=
soak: deps
	@mkdir -p $(CACHE)
	@echo "==> chaos soak ($(SOAK_DURATION) per broker); full log in .cache/soak.log"
	@cd e2e && AUDITPIPE_SOAK_DURATION=$(SOAK_DURATION) AUDITPIPE_SOAK_SEEDS=$(SOAK_SEEDS) \
		$(GO) test -tags soak -run 'TestChaosSoakLong' -count=1 -v -timeout 4h . 2>&1 | \
		tee $(CACHE)/soak.log | grep -E '^(=== RUN|--- |PASS|FAIL|ok )|soak_(long_)?test.go'

## run: the whole pipeline on embedded infrastructure (Ctrl-C stops it all)
run: deps build
	@$(BIN)/devstack --bin $(BIN)

clean:
	rm -rf $(BIN) $(CACHE)
