# syntax=docker/dockerfile:1
# dfs image: one image runs every role (`master`, `worker`, or any client verb).
#   docker build -t dfs .
#   docker run --rm dfs --help
# compose.yaml builds it and runs NATS + a master + three workers.

# ---- build: install dependencies and compile TypeScript into dist/ ----
FROM node:20-bookworm-slim AS build
# classic-level and cbor-extract ship linux prebuilds; the toolchain is only a fallback
# for node-gyp on a platform without one. It stays in this stage.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json tsconfig.json ./
COPY bin/ ./bin/
COPY src/ ./src/
COPY streams/ ./streams/
COPY workers/ ./workers/
COPY client/ ./client/
COPY scripts/ ./scripts/
# `npm ci` runs the `prepare` script (tsc -p .), so typescript (a devDependency) must be
# installed here; the dev dependencies are pruned afterwards.
RUN npm ci --no-audit --no-fund \
 && test -f dist/client/cli.js \
 && npm prune --omit=dev --no-audit --no-fund \
 && npm cache clean --force

# ---- runtime ----
FROM node:20-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build --chown=node:node /app ./
# Workers keep their LevelDB in /data and credentials live in /creds (volumes); owned by
# `node` so that a fresh named volume, which Docker seeds from the image, is writable
# without root.
RUN mkdir -p /data /creds && chown node:node /data /creds
USER node
ENTRYPOINT ["node", "bin/dfs.js"]
CMD ["--help"]
