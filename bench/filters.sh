#!/usr/bin/env bash
# Filters benchmark (called by bench/run.sh; also runnable alone). Needs wrk
# (Debian package `wrk`) and taskset (`util-linux`): installs them with apt-get
# when run as root, otherwise stops naming the package. Builds (TypeScript and
# filters), then runs the compiled dist/bench/filters-bench.js with the pinned Node.
#
#   bench/filters.sh [--duration 10] [--rounds 3] [--markdown out.md]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PATH="$ROOT/.tools/bin:$PATH"
cd "$ROOT"

for pair in wrk:wrk taskset:util-linux; do
  cmd="${pair%%:*}" pkg="${pair##*:}"
  if ! command -v "$cmd" >/dev/null 2>&1; then
    if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1; then
      echo "==> installing $pkg (apt-get install -y $pkg)"
      apt-get update -qq && apt-get install -y -qq "$pkg" >/dev/null
    else
      echo "bench/filters.sh: '$cmd' is missing: install it with 'apt-get install -y $pkg' (as root) and retry" >&2
      exit 1
    fi
  fi
done

bash scripts/build.sh >/dev/null
exec node dist/bench/filters-bench.js "$@"
