# redis-es-sync container image.
#
#   docker build -t redis-es-sync .
#   docker run --rm -e REDIS_URL=... -e QUEUE_REDIS_URL=... -e ELASTICSEARCH_URL=... redis-es-sync            # run (producer + worker)
#   docker run --rm ... redis-es-sync producer | worker | snapshot --wait | verify
#
#   docker run --rm -p 3000:3000 -e HTTP_HOST=0.0.0.0 -e HTTP_OPERATOR_USERNAME=ops -e HTTP_OPERATOR_PASSWORD=... ... redis-es-sync dashboard
#
# Configuration comes from the environment (REDIS_URL, QUEUE_REDIS_URL, ELASTICSEARCH_URL,
# ELASTICSEARCH_API_KEY or ELASTICSEARCH_USERNAME/ELASTICSEARCH_PASSWORD, HTTP_PORT, HTTP_HOST,
# HTTP_SEARCH_TOKEN, HTTP_VIEWER_TOKEN, HTTP_OPERATOR_USERNAME/PASSWORD, each also as *_FILE,
# CONFIG, LOG_LEVEL; docs/operations.md "HTTP surface"). Mount a rules file and set CONFIG
# to use one, e.g.
#   -v "$PWD/examples:/config:ro" -e CONFIG=/config/sync.yml

############################
# Build stage
############################
FROM node:24-bookworm-slim AS build

WORKDIR /app

# Dependencies first, so source edits do not invalidate this layer.
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund

COPY . .
RUN npm run build \
 && npm prune --omit=dev --no-audit --no-fund

############################
# Runtime stage
############################
FROM node:24-bookworm-slim AS runtime

ENV NODE_ENV=production

WORKDIR /app

# Files stay owned by root (read-only for the service user).
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist

# The official image ships the unprivileged user "node" (uid 1000). Nothing is written to
# disk, so the root filesystem may be mounted read-only.
USER node

# HTTP surface when HTTP_PORT is set: 8080 by convention for producer/worker probes and
# metrics, 3000 for `dashboard` (its default).
EXPOSE 8080 3000

# The service handles SIGTERM/SIGINT itself (drains, then exits); give it time to do so
# (docker stop -t / compose stop_grace_period).
ENTRYPOINT ["node", "dist/cli/main.js"]
CMD ["run"]
