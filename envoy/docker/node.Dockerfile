# Local stand-in for node:<major>-bookworm-slim (built by build-bases.sh where
# no image registry is reachable): Debian bookworm slim with Node and npm in
# /usr/local and a `node` user (uid 1000), as in the official image.
# One addition for the machine it is built on: Node here also trusts that
# machine's CA certificates (its system store, and NODE_EXTRA_CA_CERTS if
# set), so `npm ci` in the Dockerfile's build stage reaches the npm registry
# where a TLS-inspecting egress proxy stands between (as on this project's
# CI); on other machines that adds nothing Node does not already trust.
# The server image's final stage is FROM scratch and inherits none of it.
FROM debian:bookworm-slim
ARG EXTRA_CA_CERTS=
COPY node /usr/local/bin/node
COPY npm /usr/local/lib/node_modules/npm
COPY extra-ca-certs.pem /usr/local/share/infergate-stand-in/extra-ca-certs.pem
ENV NODE_EXTRA_CA_CERTS=${EXTRA_CA_CERTS}
RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \
 && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx \
 && groupadd --gid 1000 node && useradd --uid 1000 --gid node --shell /bin/bash --create-home node \
 && node --version && npm --version
CMD ["node"]
