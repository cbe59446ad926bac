#!/usr/bin/env node
// The admin CLI. The TypeScript sources are compiled to dist/ by `npm install` (prepare).
import module from 'node:module';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

// Node 22.1+: keep V8's compiled code of dist/ and Prisma between runs (a no-op on Node 20).
module.enableCompileCache?.();

const entry = new URL('../dist/cli/index.js', import.meta.url);
if (!existsSync(fileURLToPath(entry))) {
  process.stderr.write('gatehouse: not built yet: run `npm run build` in the gatehouse folder\n');
  process.exit(1);
}
await import(entry.href);
