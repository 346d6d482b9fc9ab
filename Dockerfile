# pullthrough container image: built with dev dependencies, run with production ones only, as
# uid 1000, CA and cache on volumes, configured by environment or a mounted config.yaml.
# `npm run image` builds it with docker, podman or buildah (scripts/image/); README "Deploy".

# The official Node 24 slim image, pinned by digest (the multi-platform index of
# node:24-bookworm-slim, Node 24.18.0, as pinned in public Dockerfiles; it could not be pulled
# from the machines this was written on). Refresh it with
#   skopeo inspect --raw docker://docker.io/library/node:24-bookworm-slim | sha256sum
# (or `docker buildx imagetools inspect node:24-bookworm-slim`). Where Docker Hub is out of
# reach, `npm run image` makes a Debian bookworm + Node 24 base locally and passes it here.
ARG BASE_IMAGE=docker.io/library/node:24-bookworm-slim@sha256:6f7b03f7c2c8e2e784dcf9295400527b9b1270fd37b7e9a7285cf83b6951452d

FROM ${BASE_IMAGE} AS build
# On both stages: `npm run image` prunes the untagged images of earlier builds by this label.
LABEL org.opencontainers.image.title=pullthrough
WORKDIR /app
# For npm behind a TLS-inspecting proxy: the path of a CA bundle inside the build (podman and
# buildah can mount one with -v; `npm run image` mounts the host's). Empty: Node's own roots.
ARG NODE_EXTRA_CA_CERTS=
COPY package.json package-lock.json ./
# --ignore-scripts: nothing needs an install script to compile, and the `node` devDependency
# (Node 24 for hosts) would download a second Node the image already has.
RUN npm ci --ignore-scripts --no-audit --no-fund --no-update-notifier
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npx tsc -p tsconfig.build.json && npm prune --omit=dev --ignore-scripts --no-audit --no-fund

FROM ${BASE_IMAGE}
LABEL org.opencontainers.image.title=pullthrough
ENV NODE_ENV=production \
    PULLTHROUGH_CA_DIR=/ca
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
# The dashboard's browser files, served as they are (src/ui/handler.ts finds them beside dist/).
COPY src/ui/static ./src/ui/static
COPY package.json ./
COPY deploy/container/healthcheck.js ./
COPY deploy/container/entrypoint.sh /usr/local/bin/pullthrough-entrypoint
# The shipped config.yaml (every key at its default); mount your own over it.
COPY config.yaml /etc/pullthrough/config.yaml
# /cache is the cache unless rpardini/docker-registry-proxy's /docker_mirror_cache is mounted
# (entrypoint.sh). /etc/ssl/certs: the proxy also reads the OS trust store, and OpenSSL
# complains on stderr when its directory is missing (a slim base has no ca-certificates).
# Numeric user: Kubernetes can check runAsNonRoot only against a uid.
# `pullthrough` on PATH (docker exec pullthrough pullthrough ca export) is the entrypoint too.
RUN mkdir -p /ca /cache /docker_mirror_cache /etc/ssl/certs \
 && chown 1000:1000 /ca /cache /docker_mirror_cache \
 && chmod 0700 /ca \
 && ln -s pullthrough-entrypoint /usr/local/bin/pullthrough
USER 1000:1000
# /ca must persist: a new CA on every start would make every client reject the proxy.
VOLUME ["/ca", "/cache"]
EXPOSE 3128
# Follows the configured port: healthcheck.js reads the config as the proxy does.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 CMD ["node", "/app/healthcheck.js"]
# Node is PID 1 (exec'd by the entrypoint) and the proxy handles SIGTERM itself: it stops
# accepting, lets requests finish for shutdownTimeout (10s), then exits 0. Give `docker stop`
# more than that (--stop-timeout 30, compose stop_grace_period).
ENTRYPOINT ["pullthrough-entrypoint"]
CMD ["serve", "--config", "/etc/pullthrough/config.yaml"]
