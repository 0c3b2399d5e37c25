# keras-serving — every entry point a user or CI needs. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV   := .venv
PYTHON := $(VENV)/bin/python
TOOLS  := .tools
export PATH := $(CURDIR)/$(TOOLS)/bin:$(CURDIR)/$(VENV)/bin:$(PATH)

PYTEST := $(PYTHON) -m pytest

.PHONY: help
help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

# ---- environment -----------------------------------------------------------------------------
$(VENV)/.installed: requirements/dev.txt requirements/constraints.txt gateway/pyproject.toml model/pyproject.toml scripts/setup-venv.sh
	scripts/setup-venv.sh
	@touch $@

.PHONY: venv tools system
venv: $(VENV)/.installed ## create .venv with the pinned Python packages

$(TOOLS)/.installed: scripts/install-tools.sh
	scripts/install-tools.sh
	@touch $@

tools: $(TOOLS)/.installed ## install pinned helm, kubectl, checkov, readme-generator, cosign, registry, actionlint into .tools/

system: ## install the Debian packages the container tier and benchmarks need (docker.io, mmdebstrap, podman, nginx, wrk)
	scripts/install-system.sh

# ---- the two commands ------------------------------------------------------------------------
.PHONY: demo test
demo: venv ## run the whole stack locally on the bundled demo model and classify a sample image
	scripts/demo.sh

test: venv tools system ## run every test tier (unit, chart, integration, containers, cluster)
	$(PYTEST)

# ---- single tiers ----------------------------------------------------------------------------
.PHONY: test-unit test-chart test-integration test-containers test-cluster
test-unit: venv ## unit tests only
	$(PYTEST) -m unit
test-chart: venv tools ## chart rendering, schemas, checkov, packaging
	$(PYTEST) -m chart
test-integration: venv ## gateway <-> real gRPC model server
	$(PYTEST) -m integration
test-containers: venv tools system ## Docker images, container e2e, podman kube play of the chart
	$(PYTEST) -m containers
test-cluster: venv tools system ## the cluster tier: make cluster-up's cluster (started if needed), or KS_CLUSTER=current
	$(PYTEST) -m cluster

# ---- the test cluster: a single-node Kubernetes built here from Go modules + Debian packages ---
.PHONY: cluster-up cluster-down
cluster-up: tools system ## build (cached) and start the single-node test cluster; KUBECONFIG on the last line
	scripts/cluster/up.sh
cluster-down: ## stop the test cluster and remove every process, mount, iptables rule and netns it made
	scripts/cluster/down.sh

# ---- release: images + chart to an OCI registry, pinned by digest and signed ------------------
.PHONY: release registry-up registry-down
REGISTRY ?= 127.0.0.1:5000
OWNER    ?= keras-serving
release: venv tools ## build, push, sign images and the digest-pinned chart (REGISTRY= OWNER= VERSION= SIGN=key|keyless|none PLATFORMS=)
	REGISTRY=$(REGISTRY) OWNER=$(OWNER) VERSION=$(VERSION) SIGN=$(SIGN) PLATFORMS=$(PLATFORMS) scripts/release/release.sh
registry-up: tools ## start a local OCI registry at 127.0.0.1:5000 (make release's default REGISTRY)
	scripts/release/registry.sh start
registry-down: ## stop the local registry
	scripts/release/registry.sh stop

# ---- local stack -----------------------------------------------------------------------------
.PHONY: up down reset
up: venv ## start model server + gateway in the background (MODEL=my.keras [LABELS=labels.txt] serves yours); stop with make down
	MODEL="$(MODEL)" LABELS="$(LABELS)" scripts/stack.sh up
down: ## stop what make up started
	scripts/stack.sh down
reset: ## stop make up / make demo stacks and the local registry, and delete their state (.run/stack, .run/demo, .run/models, .run/registry)
	scripts/stack.sh down
	STACK_DIR=$(CURDIR)/.run/demo scripts/stack.sh down
	scripts/release/registry.sh stop >/dev/null
	rm -rf .run/stack .run/demo .run/models .run/registry

# ---- docs and benchmarks ---------------------------------------------------------------------
.PHONY: docs bench
docs: tools venv ## regenerate docs/parameters.md and values.schema.json from values.yaml, and docs/gateway.md's settings and error tables from the gateway's code
	scripts/values-docs.sh
	$(PYTHON) scripts/gateway-docs.py docs/gateway.md

bench: venv system ## run the benchmarks (bench/results.md, .png) and the long soak (bench/soak-results.md)
	$(PYTHON) -m bench
	$(PYTHON) -m bench.soak --requests 15000  # about 3 min: keeps make bench near 10 min on 2 cores

.PHONY: soak
soak: venv ## the long gateway soak alone: 50,000 predictions at concurrency 32 (bench/soak-results.md)
	$(PYTHON) -m bench.soak --requests 50000

.PHONY: clean
clean: ## remove the venv, tools and runtime state
	rm -rf $(VENV) $(TOOLS) .run
