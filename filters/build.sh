#!/usr/bin/env bash
# Compiles each proxy-wasm filter (filters/<name>/index.ts) with asc into
# build/filters/<name>.wasm, and each build of it that exports fewer callbacks
# (filters/<name>/index.<variant>.ts) into build/filters/<name>-<variant>.wasm
# (guard: docs/filters.md § Guard builds). Optimised (-O3, no asserts), default incremental
# runtime (the filters allocate per request, so stub would leak), and abort
# routed to our own logger so the module imports nothing Envoy lacks.
# Skips a filter whose .wasm is newer than every source it could include:
# any file under filters/, since a module may import another's (guard is
# built from rate-limit and payload-limit).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PATH="$ROOT/.tools/bin:$PATH"
cd "$ROOT"
mkdir -p build/filters

ASC="node_modules/assemblyscript/bin/asc.js"
if [[ ! -f "$ASC" ]]; then
  echo "filters/build.sh: $ASC is missing: run 'npm ci' (assemblyscript is a pinned devDependency)" >&2
  exit 1
fi
command -v node >/dev/null 2>&1 || { echo "filters/build.sh: node is not on PATH: run 'make setup'" >&2; exit 1; }

ASC_FLAGS=(-O3 --noAssert --use abort=filters/shared/abort/filterAbort)

for entry in filters/*/index.ts filters/*/index.*.ts; do
  [[ -f "$entry" ]] || continue
  dir="$(dirname "$entry")"
  name="$(basename "$dir")"
  [[ "$name" == shared ]] && continue
  variant="$(basename "$entry" .ts)"
  variant="${variant#index}"
  name="$name${variant:+-${variant#.}}"
  out="build/filters/$name.wasm"
  if [[ -e "$out" && -z "$(find filters node_modules/assemblyscript/package.json -newer "$out" -type f 2>/dev/null | head -1)" ]]; then
    echo "    filter $name: up to date"
    continue
  fi
  # Write aside and rename, so a concurrent build (parallel test files) never sees half a module.
  node "$ASC" "$entry" -o "$out.$$.tmp" "${ASC_FLAGS[@]}"
  mv "$out.$$.tmp" "$out"
  echo "    filter $name: built $out ($(wc -c < "$out") bytes)"
done
