#!/usr/bin/env bash
# Builds what the tests and the demo run: the Rego policy (to wasm, with its
# tests run first), the TypeScript, and the proxy-wasm filters. Each step is
# skipped when its output is newer than its inputs.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PATH="$ROOT/.tools/bin:$PATH"
cd "$ROOT"

newer_than() { # newer_than OUT INPUT... : true if OUT exists and is newer than every input file
  local out="$1"; shift
  [[ -e "$out" ]] || return 1
  [[ -z "$(find "$@" -newer "$out" -type f 2>/dev/null | head -1)" ]]
}

mkdir -p build/policy
if newer_than build/policy/bundle.tar.gz ext-authz/policy; then
  echo "    policy: up to date"
else
  echo "    policy: opa check, opa test, opa build -t wasm"
  opa check --strict ext-authz/policy
  opa test ext-authz/policy
  opa build -t wasm -e infergate/authz/decision ext-authz/policy/authz.rego -o build/policy/bundle.tar.gz.tmp
  mv build/policy/bundle.tar.gz.tmp build/policy/bundle.tar.gz
fi

if newer_than dist/.built ext-authz/src envoy istio cli demo bench scripts tsconfig.json tsconfig.build.json package.json; then
  echo "    typescript: up to date"
else
  echo "    typescript: tsc -p tsconfig.build.json"
  npx --no-install tsc -p tsconfig.build.json
  chmod +x dist/ext-authz/src/cli.js dist/cli/infergate.js dist/demo/run-demo.js
  touch dist/.built
fi

if [[ -x filters/build.sh ]]; then
  filters/build.sh
fi
