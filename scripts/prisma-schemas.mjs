// Writes one Prisma schema per database provider from prisma/models.prisma, so
// there is a single source of models and one migration history per provider.
// `--check` exits non-zero when a committed schema is out of date.
import { readFileSync, writeFileSync, mkdirSync, existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const models = readFileSync(join(root, 'prisma/models.prisma'), 'utf8');
export const providers = ['sqlite', 'postgresql'];

const header = (provider) => `// GENERATED from prisma/models.prisma by scripts/prisma-schemas.mjs: do not edit.

generator client {
  provider   = "prisma-client"
  output     = "../../src/generated/${provider}"
  engineType = "client"
  moduleFormat = "esm"
  importFileExtension = "js"
}

datasource db {
  provider = "${provider}"
  url      = env("DATABASE_URL")
}

`;

const check = process.argv.includes('--check');
let stale = [];
for (const provider of providers) {
  const file = join(root, 'prisma', provider, 'schema.prisma');
  const text = header(provider) + models;
  if (check) {
    if (!existsSync(file) || readFileSync(file, 'utf8') !== text) stale.push(file);
    continue;
  }
  mkdirSync(dirname(file), { recursive: true });
  if (!existsSync(file) || readFileSync(file, 'utf8') !== text) writeFileSync(file, text);
}
if (stale.length) {
  console.error(`out of date (run npm run prisma:schemas): ${stale.join(', ')}`);
  process.exit(1);
}
