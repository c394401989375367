# Pinned tool versions; setup.sh and the benchmark scripts read these.
NODE_VERSION=24.21.0
ENVOY_VERSION=1.40.0
OPA_VERSION=v1.22.2
GHZ_VERSION=v0.121.0
