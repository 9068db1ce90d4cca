# syntax=docker/dockerfile:1
#
# One image for both Vigil apps. The compose file (docker-compose.yml) picks the app with
#   command: ["node", "apps/manager/dist/main.js"]           (the default CMD below)
#   command: ["node", "apps/observer-service/dist/main.js"]
# Node runs directly (no npm wrapper) so SIGTERM reaches the app; compose adds `init: true`
# so a small init process forwards signals and reaps zombies.
#
# Node 22 (LTS): Node 20 reached end of life in April 2026. package.json's engines (>=20)
# allows it. Override with --build-arg NODE_IMAGE=... if needed.
ARG NODE_IMAGE=node:22-bookworm-slim

# ---------------------------------------------------------------------------------------
# build: the two apps and the libraries they import, nothing else (no testkit, benchmark or
# fault suite: their dependencies never enter the image).
# ---------------------------------------------------------------------------------------
FROM ${NODE_IMAGE} AS build
WORKDIR /app

# Manifests first: the `npm ci` layer is reused until a dependency changes. npm ci -w installs
# what the named workspaces need from package-lock.json, so only their manifests are copied;
# --include-workspace-root brings the root's devDependencies (typescript).
COPY package.json package-lock.json ./
COPY libs/backoff/package.json libs/backoff/
COPY libs/contracts/package.json libs/contracts/
COPY libs/egress/package.json libs/egress/
COPY libs/config/package.json libs/config/
COPY libs/logging/package.json libs/logging/
COPY libs/broker/package.json libs/broker/
COPY libs/observer-sdk/package.json libs/observer-sdk/
COPY apps/manager/package.json apps/manager/
COPY apps/observer-service/package.json apps/observer-service/
RUN npm ci --no-audit --no-fund --include-workspace-root \
      --workspace=@vigil/manager --workspace=@vigil/observer-service

# Sources (.dockerignore keeps node_modules, dist and *.tsbuildinfo out, so `tsc -b`
# always builds from scratch here). tsc -b follows the apps' project references to the libs.
COPY tsconfig.json tsconfig.base.json ./
COPY libs libs
COPY apps apps
RUN npx tsc -b apps/manager apps/observer-service

# ---------------------------------------------------------------------------------------
# runtime: the apps' production dependencies only, plus each of their workspaces' dist/.
# ---------------------------------------------------------------------------------------
FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production
WORKDIR /app

COPY package.json package-lock.json ./
COPY libs/backoff/package.json libs/backoff/
COPY libs/contracts/package.json libs/contracts/
COPY libs/egress/package.json libs/egress/
COPY libs/config/package.json libs/config/
COPY libs/logging/package.json libs/logging/
COPY libs/broker/package.json libs/broker/
COPY libs/observer-sdk/package.json libs/observer-sdk/
COPY apps/manager/package.json apps/manager/
COPY apps/observer-service/package.json apps/observer-service/
# Workspaces are linked into node_modules/@vigil/* and resolve to libs/*/dist via "main".
RUN npm ci --omit=dev --no-audit --no-fund \
      --workspace=@vigil/manager --workspace=@vigil/observer-service \
    && npm cache clean --force

COPY --from=build /app/libs/backoff/dist libs/backoff/dist
COPY --from=build /app/libs/contracts/dist libs/contracts/dist
COPY --from=build /app/libs/egress/dist libs/egress/dist
COPY --from=build /app/libs/config/dist libs/config/dist
COPY --from=build /app/libs/logging/dist libs/logging/dist
COPY --from=build /app/libs/broker/dist libs/broker/dist
COPY --from=build /app/libs/observer-sdk/dist libs/observer-sdk/dist
COPY --from=build /app/apps/manager/dist apps/manager/dist
COPY --from=build /app/apps/observer-service/dist apps/observer-service/dist
# The dashboard the manager serves at / : static files, used as they are.
COPY apps/manager/public apps/manager/public

# Files stay owned by root (read-only for the app); the process runs unprivileged.
USER node

# The manager listens on PORT (3000 by default); the observer service has no port.
EXPOSE 3000
CMD ["node", "apps/manager/dist/main.js"]
