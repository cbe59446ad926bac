// The GitHub stand-in of the sign-in flow, as a process of its own so that its CPU is counted
// apart from Gatehouse's. It is the tests' stand-in (test/support/upstreams/fake-github.ts),
// compiled here with TypeScript's transpiler: one stand-in, not a copy for the bench.
// env: PORT, GITHUB_CLIENT_ID, GITHUB_CLIENT_SECRET. Ready when GET /api/v3/ answers (404 is fine).
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import ts from 'typescript';
import { ROOT } from './lib.mjs';

const source = readFileSync(join(ROOT, 'test', 'support', 'upstreams', 'fake-github.ts'), 'utf8');
const { outputText } = ts.transpileModule(source, { compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 } });
const dir = mkdtempSync(join(tmpdir(), 'gatehouse-standin-'));
const file = join(dir, 'fake-github.mjs');
writeFileSync(file, outputText);
const { startFakeGitHub } = await import(pathToFileURL(file).href);
rmSync(dir, { recursive: true, force: true });

const github = await startFakeGitHub({
  clientId: process.env.GITHUB_CLIENT_ID,
  clientSecret: process.env.GITHUB_CLIENT_SECRET,
  port: Number(process.env.PORT),
});
// The request log is for tests; a bench run would only grow it.
setInterval(() => { github.log.length = 0; }, 1000).unref();
process.on('SIGTERM', () => void github.close().then(() => process.exit(0)));
