# pullthrough container image: the proxy on Node 24, CA and cache on volumes, non-root.
# Pin the base by digest in production builds (docker buildx imagetools inspect node:24-bookworm-slim).
FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.json tsconfig.build.json ./
# --ignore-scripts: the image's own Node 24 builds; the pinned `node` devDependency is for hosts.
RUN npm ci --ignore-scripts
COPY src ./src
RUN npx tsc -p tsconfig.build.json && npm prune --omit=dev --ignore-scripts

FROM node:24-bookworm-slim
ENV NODE_ENV=production \
    PULLTHROUGH_CA_DIR=/ca \
    PULLTHROUGH_CACHE_DIR=/cache
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json config.yaml ./
RUN mkdir -p /ca /cache && chown node:node /ca /cache && chmod 0700 /ca
USER node
# /ca must persist: a new CA on every start would make every node reject the proxy.
VOLUME ["/ca", "/cache"]
EXPOSE 3128
HEALTHCHECK --interval=30s --timeout=3s CMD node -e "fetch('http://127.0.0.1:3128/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
# The Node flags of src/node-flags.ts (a smaller young generation: far fewer full GCs on cold fills).
ENTRYPOINT ["node", "--max-semi-space-size=4", "dist/main.js"]
CMD ["serve", "--config", "/app/config.yaml"]
