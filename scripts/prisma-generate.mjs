// Runs `prisma generate` for each provider's schema with the JavaScript engine,
// so nothing is downloaded (see docs/ARCHITECTURE.md, "Storage").
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

// Generation never connects, but the schema's url must parse for its provider.
const placeholderUrl = { sqlite: 'file:./data/prisma-cli.db', postgresql: 'postgresql://localhost:5432/gatehouse' };
const root = join(dirname(fileURLToPath(import.meta.url)), '..');
for (const provider of ['sqlite', 'postgresql']) {
  const result = spawnSync(
    process.execPath,
    [join(root, 'node_modules/prisma/build/index.js'), 'generate', '--config', `prisma/${provider}/prisma.config.mjs`],
    {
      cwd: root,
      stdio: 'inherit',
      // The Prisma CLI tries to download a query engine when no URL is set.
      env: { ...process.env, PRISMA_HIDE_UPDATE_MESSAGE: '1', DATABASE_URL: placeholderUrl[provider] },
    },
  );
  if (result.status !== 0) process.exit(result.status ?? 1);
}
