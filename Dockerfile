# Gatehouse on Node 22. Build: docker build -t gatehouse .
# test/packaging/image.test.ts builds and starts exactly what this file copies
# (it reads the COPY and RUN lines below), natively, outside the repository.
FROM node:22-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
COPY scripts ./scripts
COPY prisma ./prisma
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
# npm ci runs `prepare` (the build: Prisma clients and tsc into dist/), then
# the dev dependencies go, and so does the development upstream of `npm run dev`
# (dist/dev: never loaded by the server, which also refuses it in production).
RUN npm ci --no-audit --no-fund && npm prune --omit=dev --no-audit --no-fund && rm -rf dist/dev

FROM node:22-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production
# The default database is a SQLite file on the /data volume (owned by node);
# set DATABASE_URL=postgresql://… to use PostgreSQL instead.
ENV DATABASE_URL=file:/data/gatehouse.db
RUN mkdir -p /data && chown node:node /data
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
COPY bin ./bin
COPY prisma ./prisma
COPY views ./views
USER node
VOLUME /data
EXPOSE 3000
HEALTHCHECK CMD node -e "fetch('http://127.0.0.1:3000/readyz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
CMD ["node", "dist/main.js"]
