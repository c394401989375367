#!/usr/bin/env bash
# Benchmarks (`make bench`). Uses the pinned load generator ghz that `make
# setup` installs into .tools/bin, builds dist/, runs the ext-authz benchmark
# (bench/authz-bench.ts; extra arguments are passed to it), then
# bench/filters.sh (head to head, then one configuration at a time), then
# bench/global-quotas.sh.
#
#   bash bench/run.sh                       # about 3 minutes on 2 cores
#   bash bench/run.sh --markdown out.md     # also write the tables as markdown
#   bash bench/run.sh --only baseline,hit --duration 5
#   OPA_ENVOY=/path/to/opa-envoy-plugin bash bench/run.sh --pin both
#                                           # also OPA-Envoy, pinned and not
#                                           # (make bench OPA_ENVOY=... too)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PATH="$ROOT/.tools/bin:$PATH"
cd "$ROOT"
# shellcheck source=../scripts/versions.sh
source scripts/versions.sh

GHZ="$ROOT/.tools/bin/ghz"
if [[ ! -x "$GHZ" ]]; then
  echo "bench: $GHZ is missing: run 'make setup' (it installs ghz $GHZ_VERSION with go install)" >&2
  exit 1
fi

if ! command -v node >/dev/null 2>&1; then
  echo "bench: 'node' is not on PATH; run 'make setup' (scripts/setup.sh) first" >&2
  exit 1
fi
echo "==> build (scripts/build.sh)"
bash scripts/build.sh

echo "==> ext-authz: where a check's time goes, in-process (bench/authz-pipeline.ts)"
node dist/bench/authz-pipeline.js

echo "==> ext-authz: Authorization/Check with ghz (bench/authz-bench.ts)"
# OPA_ENVOY: an opa-envoy-plugin binary of your own (without it the benchmark
# leaves the OPA-Envoy rows out and says where a binary comes from).
OPA_ENVOY_ARGS=()
if [[ -n "${OPA_ENVOY:-}" ]]; then OPA_ENVOY_ARGS=(--opa-envoy "$OPA_ENVOY"); fi
node dist/bench/authz-bench.js --ghz "$GHZ" "${OPA_ENVOY_ARGS[@]}" "$@"

if [[ -x bench/filters.sh ]]; then
  # Throughput ratios head to head (two Envoys on one core at the same moment:
  # robust to this kind of VM's noise), then one Envoy at a time for latency.
  echo "==> filters, head to head (bench/filters.sh --head-to-head)"
  bench/filters.sh --head-to-head --duration 3 --warmup 1 --rounds 7
  echo "==> filters, one configuration at a time, for latency (bench/filters.sh)"
  bench/filters.sh --duration 3 --warmup 1 --rounds 9
fi

# The global check (ratelimit filter -> envoyproxy/ratelimit -> Redis) against guard alone.
echo "==> global quotas (bench/global-quotas.sh)"
bash bench/global-quotas.sh --duration 4 --warmup 1 --rounds 5
