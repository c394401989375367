#!/usr/bin/env bash
# Soak benchmark (bench/soak.ts, its modules in bench/soak/): infergate-authz
# alone, then Envoy + ext_authz + guard, each under a steady open-loop load for
# --minutes (default 10), sampling memory and latency; prints per-minute tables
# and the "memory flat" and "latency steady" verdicts. About 21 minutes with
# the defaults.
# Needs the pinned Node and Envoy (make setup) and openssl; builds first.
#
#   bench/soak.sh                                   # 10 min per phase
#   bench/soak.sh --minutes 2 --only server         # a short look at one phase
#   bench/soak.sh --json soak.json --markdown soak.md
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PATH="$ROOT/.tools/bin:$PATH"
cd "$ROOT"

if ! command -v node >/dev/null 2>&1; then
  echo "bench/soak.sh: 'node' is not on PATH; run 'make setup' (scripts/setup.sh) first" >&2
  exit 1
fi
if ! command -v openssl >/dev/null 2>&1; then
  echo "bench/soak.sh: 'openssl' is missing (the Envoy phase makes its test PKI with it): apt-get install -y openssl" >&2
  exit 1
fi
bash scripts/build.sh >/dev/null
exec node dist/bench/soak.js "$@"
