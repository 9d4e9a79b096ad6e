# barkeep in a container: multi-stage (dependencies built in the first stage, nothing of the build
# toolchain in the image), run as a non-root user, LMDB data on a volume, health from GET /health.
#   docker build -t barkeep .
#   docker run -p 8000:8000 -v barkeep-data:/data -e BARKEEP_API_TOKEN=... barkeep
# barkeep is PID 1's only child (node itself, not npm), so `docker stop` (SIGTERM) reaches it and it
# flushes and exits 0 within supervisor.shutdown_timeout_ms.
FROM node:20-bookworm-slim AS deps
WORKDIR /app
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
RUN npm ci --omit=dev

# The compiled, bundled build (dist/): a cold start from it is about a third of one from the sources
# through tsx. Built with the dev dependencies (tsgo, esbuild), which stay in this stage.
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts
COPY bin ./bin
COPY scripts ./scripts
COPY src ./src
COPY tsconfig.json tsconfig.build.json ./
RUN npm run build

FROM node:20-bookworm-slim
ENV NODE_ENV=production \
    BARKEEP_DATA_DIR=/data \
    BARKEEP_HOST=0.0.0.0 \
    BARKEEP_PORT=8000
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json package-lock.json ./
COPY bin ./bin
COPY config ./config
COPY src ./src
COPY --from=build /app/dist ./dist
RUN mkdir -p /data && chown node:node /data
USER node
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.BARKEEP_PORT || 8000) + '/health').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["node"]
CMD ["bin/barkeep.mjs", "serve"]
