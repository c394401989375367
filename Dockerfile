# The infergate ext_authz server as a small non-root image.
#   docker build -t infergate-authz:0.1.0 .
# Stages: OPA (only to compile the Rego policy to wasm), a Node build stage
# (npm ci, tsc, the policy bundle, and the final root file system), and a
# distroless-style final stage FROM scratch holding only what runs: node, the
# files of the Debian packages it links against (libc6, libgcc-s1,
# libstdc++6), the server and its production dependencies. No shell, no
# package manager, no npm. Versions follow scripts/versions.sh (checked by
# envoy/docker/build-bases.sh); test/docker builds and runs this file
# (docs/docker.md). Works with BuildKit and with the classic builder.

FROM openpolicyagent/opa:1.22.2-static AS opa

FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: no dependency needs an install script to run the server.
RUN npm ci --ignore-scripts --no-audit --no-fund --no-update-notifier --loglevel=error
COPY --from=opa /opa /usr/local/bin/opa
COPY tsconfig.json tsconfig.build.json ./
COPY proto proto
COPY ext-authz ext-authz
# The policy bundle, the server's JavaScript, and production dependencies only,
# without source maps and TypeScript sources and declarations (never loaded).
RUN mkdir -p build/policy \
 && opa build -t wasm -e infergate/authz/decision ext-authz/policy/authz.rego -o build/policy/bundle.tar.gz \
 && echo '{"extends":"./tsconfig.build.json","compilerOptions":{"sourceMap":false},"include":["ext-authz/src"]}' > tsconfig.image.json \
 && npx tsc -p tsconfig.image.json \
 && npm prune --omit=dev --ignore-scripts --no-audit --no-fund --no-update-notifier --loglevel=error \
 && find node_modules -type f \( -name '*.map' -o -name '*.ts' -o -name '*.mts' -o -name '*.cts' \) -delete
# The final root file system, merged-/usr like Debian's: every file the Debian
# packages libc6, libgcc-s1, libstdc++6 and gcc-12-base (their copyright files)
# installed here, except glibc's iconv modules (gconv: node converts with its
# own ICU); node; a nonroot user (65532, the uid the rendered Deployment runs
# as, istio/render/names.ts RUN_AS); an empty /tmp to mount a tmpfs on; and
# the server in the repository's layout (the CLI finds proto/ and
# build/policy/ relative to dist/). chroot, with an empty environment,
# proves the server loads in it.
RUN set -eu; R=/rootfs; \
    mkdir -p $R/usr/bin $R/usr/lib $R/usr/lib64 $R/usr/local/bin $R/etc $R/tmp $R/home/nonroot $R/app/build/policy $R/app/dist; \
    for d in bin lib lib64; do ln -s usr/$d $R/$d; done; \
    dpkg-query -L libc6 libgcc-s1 libstdc++6 gcc-12-base | grep -v /gconv/ | while read -r f; do \
      if [ -d "$f" ] || ! { [ -e "$f" ] || [ -L "$f" ]; }; then continue; fi; \
      d="$(readlink -f "$(dirname "$f")")"; mkdir -p "$R$d"; cp -a "$f" "$R$d/"; \
    done; \
    cp /usr/local/bin/node $R/usr/local/bin/node; \
    printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' > $R/etc/passwd; \
    printf 'root:x:0:\nnonroot:x:65532:\n' > $R/etc/group; \
    printf 'hosts: files dns\n' > $R/etc/nsswitch.conf; \
    chmod 1777 $R/tmp; chown 65532:65532 $R/home/nonroot; \
    cp -a package.json node_modules proto $R/app/; \
    cp -a dist/ext-authz $R/app/dist/; \
    cp build/policy/bundle.tar.gz $R/app/build/policy/; \
    env -i /usr/sbin/chroot $R /usr/local/bin/node /app/dist/ext-authz/src/cli.js --help >/dev/null

FROM scratch
COPY --from=build /rootfs /
WORKDIR /app
ENV NODE_ENV=production \
    INFERGATE_HEALTH_URL=http://127.0.0.1:9464/readyz
USER 65532:65532
EXPOSE 9191 9464
# For Docker and compose (compose starts Envoy once this passes); Kubernetes
# ignores it and uses the Deployment's /healthz and /readyz probes. /readyz
# answers 200 once a policy is in force and gRPC is bound. With another
# --metrics address, set INFERGATE_HEALTH_URL to match (or --no-healthcheck).
HEALTHCHECK --interval=5s --timeout=3s --start-period=30s --retries=3 \
  CMD ["/usr/local/bin/node", "-e", "fetch(process.env.INFERGATE_HEALTH_URL).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["/usr/local/bin/node", "/app/dist/ext-authz/src/cli.js"]
CMD ["--manifest", "/etc/infergate/manifest.yaml", "--listen", "0.0.0.0:9191", "--metrics", "0.0.0.0:9464", "--decision-log", "stdout"]
