#!/usr/bin/env bash
# Global quotas benchmark (docs/benchmarks.md "Global quotas"): a request through
# Envoy with the global check (ratelimit filter -> envoyproxy/ratelimit -> Redis)
# against the same request with only the guard filter, one run, interleaved rounds.
# Needs wrk, taskset, redis-server and .tools/bin/ratelimit (make setup installs them). Builds, then runs dist/bench/global-quotas-bench.js.
#
#   bench/global-quotas.sh [--duration 10] [--rounds 5] [--connections 32] [--markdown out.md]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PATH="$ROOT/.tools/bin:$PATH"
cd "$ROOT"

for pair in wrk:wrk taskset:util-linux redis-server:redis-server; do
  cmd="${pair%%:*}" pkg="${pair##*:}"
  command -v "$cmd" >/dev/null 2>&1 || { echo "bench/global-quotas.sh: '$cmd' is missing: run 'make setup' (as root it installs Debian's $pkg), or apt-get install -y $pkg" >&2; exit 1; }
done
[[ -x .tools/bin/ratelimit ]] || { echo "bench/global-quotas.sh: .tools/bin/ratelimit is missing: run 'make setup'" >&2; exit 1; }

bash scripts/build.sh >/dev/null
exec node dist/bench/global-quotas-bench.js "$@"
