# The infergate ext_authz server as a small non-root image.
#   docker build -t infergate-authz:0.1.0 .
# Not built in CI (no Docker there): kept short so it is easy to check by eye.
# Versions follow scripts/versions.sh.

# OPA compiles the Rego policy to wasm at build time only; it is not in the final image.
FROM golang:1.25-bookworm AS opa
RUN CGO_ENABLED=0 go install github.com/open-policy-agent/opa@v1.22.2

FROM node:24-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: no dependency needs an install script to run the server.
RUN npm ci --ignore-scripts
COPY --from=opa /go/bin/opa /usr/local/bin/opa
COPY tsconfig.json tsconfig.build.json ./
COPY proto proto
COPY ext-authz ext-authz
RUN opa build -t wasm -e infergate/authz/decision ext-authz/policy/authz.rego -o build/policy/bundle.tar.gz \
 && echo '{"extends":"./tsconfig.build.json","include":["ext-authz/src"]}' > tsconfig.image.json \
 && npx tsc -p tsconfig.image.json \
 && npm prune --omit=dev

FROM node:24-slim
WORKDIR /app
ENV NODE_ENV=production
# Same layout as the repository: the CLI finds proto/ and build/policy/ relative to dist/.
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules node_modules
COPY --from=build /app/dist/ext-authz dist/ext-authz
COPY --from=build /app/proto proto
COPY --from=build /app/build/policy/bundle.tar.gz build/policy/bundle.tar.gz
# 65532: the uid the rendered Deployment runs as (istio/render/names.ts RUN_AS).
USER 65532:65532
EXPOSE 9191 9464
ENTRYPOINT ["node", "/app/dist/ext-authz/src/cli.js"]
CMD ["--manifest", "/etc/infergate/manifest.yaml", "--listen", "0.0.0.0:9191", "--metrics", "0.0.0.0:9464", "--decision-log", "stdout"]
