// Writes a migration for each provider from the change to prisma/models.prisma
// since the last commit:  npm run migration:new -- add_widgets
// The Prisma CLI's diff connects to a database through the adapter, so
// PostgreSQL needs a reachable server (PRISMA_DIFF_POSTGRES_URL).
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const name = process.argv[2];
if (!name || !/^[a-z0-9_]+$/.test(name)) {
  console.error('usage: npm run migration:new -- <snake_case_name>');
  process.exit(2);
}
execFileSync(process.execPath, [join(root, 'scripts/prisma-schemas.mjs')], { stdio: 'inherit' });
const urls = {
  sqlite: 'file:./data/prisma-cli.db',
  postgresql: process.env.PRISMA_DIFF_POSTGRES_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres',
};
const stamp = new Date().toISOString().replace(/\D/g, '').slice(0, 14);
const scratch = mkdtempSync(join(tmpdir(), 'gatehouse-migration-'));
mkdirSync(join(root, 'data'), { recursive: true });
for (const provider of ['sqlite', 'postgresql']) {
  const schema = `prisma/${provider}/schema.prisma`;
  const before = join(scratch, `${provider}.prisma`);
  const committed = spawnSync('git', ['show', `HEAD:${schema}`], { cwd: root, encoding: 'utf8' });
  const from = committed.status === 0 ? (writeFileSync(before, committed.stdout), ['--from-schema-datamodel', before]) : ['--from-empty'];
  const diff = spawnSync(
    process.execPath,
    [join(root, 'node_modules/prisma/build/index.js'), 'migrate', 'diff', '--config', `prisma/${provider}/prisma.config.mjs`,
      ...from, '--to-schema-datamodel', schema, '--script'],
    { cwd: root, encoding: 'utf8', env: { ...process.env, DATABASE_URL: urls[provider] } },
  );
  if (diff.status !== 0) {
    console.error(diff.stderr);
    process.exit(1);
  }
  const dir = join(root, 'prisma', provider, 'migrations', `${stamp}_${name}`);
  mkdirSync(dir, { recursive: true });
  // Prisma's SQLite diff writes JSON defaults unquoted (DEFAULT []), which SQLite
  // reads as an empty string; quote them.
  const sql = provider === 'sqlite' ? diff.stdout.replace(/DEFAULT (\[\]|\{\})/g, "DEFAULT '$1'") : diff.stdout;
  writeFileSync(join(dir, 'migration.sql'), sql);
  console.log(`wrote ${dir}/migration.sql`);
}
