# Pinned tool versions; setup.sh and the benchmark scripts read these.
NODE_VERSION=24.21.0
ENVOY_VERSION=1.40.0
OPA_VERSION=v1.22.2
GHZ_VERSION=v0.121.0
# Istio has no v-tags, so Go resolves its releases to pseudo-versions; this one builds with go install.
ISTIO_VERSION=v0.0.0-20260827124520-eed52ebb66ad
# envoyproxy/ratelimit has no tags; this pseudo-version is what the module proxy serves as latest.
RATELIMIT_VERSION=v1.4.1-0.20260122083618-3fb702589d36
