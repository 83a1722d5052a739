# Barge image: one image, two processes (compose runs the API and the worker from it).
#   API:    node dist/src/main.js   (the default CMD)
#   Worker: node dist/src/worker.js
ARG NODE_IMAGE=node:20.19.5-bookworm-slim

# --- build: all dependencies, TypeScript -> dist/ ---------------------------------------------
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json .npmrc ./
RUN npm ci
# .dockerignore keeps node_modules, dist, .git and local state out of the context.
COPY . .
RUN npm run build

# --- runtime: production dependencies and the compiled output only ------------------------------
FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json .npmrc ./
RUN npm ci --omit=dev && npm cache clean --force
COPY --from=build /app/dist ./dist
# The web console's static files are served as they are from the sources (no build step).
COPY --from=build /app/src/console/public ./src/console/public
# Files stay root-owned and read-only for the process; the app keeps its state in Postgres and MinIO.
USER node
EXPOSE 8000
CMD ["node", "dist/src/main.js"]
