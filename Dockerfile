# Production image: compiled server, production dependencies only, non-root, external PostgreSQL.
#   docker build -t fhir-server .
#   docker run -p 8080:8080 -e DATABASE_URL=postgres://user:pass@db:5432/fhir -e BASE_URL=https://fhir.example.org/fhir fhir-server

FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts
COPY tsconfig.json ./
COPY src ./src
RUN npm run build

FROM node:20-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# No dev dependencies, and no embedded PostgreSQL binaries (optional dependencies): the image needs DATABASE_URL.
RUN npm ci --omit=dev --omit=optional --ignore-scripts

FROM node:20-bookworm-slim
ENV NODE_ENV=production \
    PORT=8080 \
    REQUIRE_DATABASE_URL=true
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
COPY migrations ./migrations
COPY profiles ./profiles
USER node
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=40s --retries=3 \
  CMD node -e "fetch('http://127.0.0.1:' + (process.env.PORT || 8080) + '/fhir/metadata').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"
CMD ["node", "dist/main.js"]
