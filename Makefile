# The one entry point for people. `make help` lists the targets.
.DEFAULT_GOAL := help
SHELL := /bin/bash

# Tests reach Postgres and Redis here (started by scripts/ensure-deps.sh when missing).
export MEISA_TEST_PG ?= postgres://postgres:postgres@127.0.0.1:5432
export MEISA_TEST_REDIS ?= redis://127.0.0.1:6379
DEV_PG ?= postgres://postgres:postgres@127.0.0.1:5432

.PHONY: help dev test bench workspace lint fmt k8s-validate

help: ## Show the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

dev: ## Run everything locally: Postgres, Redis, all services, a workspace; prints what to do next
	@bash scripts/dev.sh

test: ## The whole test suite against real Postgres and Redis (started if not running), and Chromium for the dashboard
	@bash scripts/ensure-deps.sh
	@bash scripts/ensure-browser.sh
	@bash scripts/k8s-validate.sh
	cargo test --workspace --no-fail-fast

bench: ## The benchmarks of DESIGN §9, printing a table
	@bash scripts/ensure-deps.sh
	@bash scripts/bench.sh

workspace: ## Create a workspace and an API key: make workspace NAME="Acme"
	@test -n "$(NAME)" || { echo 'usage: make workspace NAME="Acme"' >&2; exit 2; }
	@cargo build -q --bin gateway
	@DATABASE_URL=$${DATABASE_URL:-$(DEV_PG)/meisa_gateway} target/debug/gateway admin create-workspace --name "$(NAME)"

k8s-validate: ## Render k8s/ overlays; check schemas (strict, offline), wiring, alerts, dashboards, checkov
	@bash scripts/k8s-validate.sh

lint: ## clippy with warnings as errors, and rustfmt check
	cargo clippy --workspace --all-targets -- -D warnings
	cargo fmt --all --check

fmt: ## Format the code
	cargo fmt --all
