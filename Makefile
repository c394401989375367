# The two commands a newcomer needs are `make demo` and `make test`; both run
# set-up first (idempotent, pinned tools into .tools/).
SHELL := /bin/bash
export PATH := $(CURDIR)/.tools/bin:$(PATH)

.PHONY: setup build test test-docker test-unit test-e2e demo bench soak clean help

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

setup: ## install pinned tools (Node, Envoy, OPA) and build everything
	@bash scripts/setup.sh

build: ## rebuild policy, TypeScript and filters
	@bash scripts/build.sh

test: setup ## every test: typecheck, opa test, unit, integration, end-to-end through Envoy
	@npm test --silent

test-docker: setup ## the Docker path for real: local base images, the server image, the compose stack, the demo scene against it (docs/docker.md)
	@npx vitest run --config test/docker/vitest.config.ts

demo: setup ## run the local scene: ext-authz + Envoy + filters + sample model server
	@node dist/demo/run-demo.js $(DEMO_ARGS)

bench: setup ## benchmarks (prints tables; see docs/benchmarks.md)
	@bash bench/run.sh

soak: setup ## soak benchmark: server, then Envoy + guard, 10 min each (SOAK_ARGS="--minutes 2" for a short look)
	@bash bench/soak.sh $(SOAK_ARGS)

clean: ## remove build output (keeps .tools/)
	rm -rf dist build
