#!/usr/bin/env bash
# Builds the Go test of Istio's own xDS generation (test/istio-xds, istio.io/istio
# at ISTIO_VERSION in scripts/versions.sh) into .tools/istio-xds.test, for
# test/istio/xds-generation.test.ts. The first build compiles a large part of
# istiod (2 cores: ~3 min after set-up's istioctl build, which shares the module
# and build caches; ~6 min from an empty build cache); after that the binary is rebuilt only when this module's sources,
# go.mod/go.sum or the Go version change (linking alone takes ~10 s).
set -euo pipefail

DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$DIR/../.." && pwd)"
OUT="$ROOT/.tools/istio-xds.test"

command -v go >/dev/null 2>&1 || {
  echo "istio-xds: go is required: install Go 1.26+ (https://go.dev/dl or Debian golang-go)" >&2
  exit 1
}
# shellcheck source=scripts/versions.sh
source "$ROOT/scripts/versions.sh"
grep -q "istio.io/istio $ISTIO_VERSION\$" "$DIR/go.mod" || {
  echo "istio-xds: go.mod does not require istio.io/istio $ISTIO_VERSION (scripts/versions.sh); update it with go get" >&2
  exit 1
}

stamp="$( (go version; cat "$DIR/go.mod" "$DIR/go.sum" "$DIR"/*.go) | sha256sum | cut -d' ' -f1)"
if [[ -x "$OUT" && "$(cat "$OUT.stamp" 2>/dev/null)" == "$stamp" ]]; then
  exit 0
fi
mkdir -p "$ROOT/.tools"
# Build beside the target and rename, so a binary another run is executing is never overwritten in place.
tmp="$(mktemp -d "$ROOT/.tools/istio-xds.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
(cd "$DIR" && go test -c -o "$tmp/istio-xds.test" .)
mv -f "$tmp/istio-xds.test" "$OUT"
echo "$stamp" > "$OUT.stamp"
