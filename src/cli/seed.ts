import { readFile } from 'node:fs/promises';
import type { SeedProgress } from '../services/seed.js';
import { CliError, withDatabase } from './context.js';
import type { Command } from './command.js';

async function readSeedFile(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? '';
    const reason = { ENOENT: 'no such file', EACCES: 'permission denied', EISDIR: 'it is a directory' }[code] ?? (err as Error).message;
    throw new CliError(`cannot read ${file}: ${reason}`);
  }
}

/** On a terminal, a seed of many clients says how far it is, on one line that updates. */
function progressLine(): SeedProgress | undefined {
  if (!process.stderr.isTTY) return undefined;
  let last = 0;
  return (stage, done, total) => {
    const now = Date.now();
    if (total < 100 || (now - last < 250 && done < total)) return;
    last = now;
    process.stderr.write(`\r${stage === 'hashing' ? 'hashing secrets' : 'writing'} ${done}/${total}${done === total ? '\n' : ''}`);
  };
}

export const seedCommand: Command = {
  name: 'seed',
  summary: 'apply a JSON/YAML file of APIs and clients',
  intro: `Applies a JSON or YAML file of APIs ("resources") and clients, idempotently, in one
transaction, under the same rules as the other commands. The whole file is
validated first: every problem is listed with its path, and nothing is written
if there is any. A confidential client without a "secret" gets one generated on
creation, shown once; a "secret" in the file is hashed on import. See examples/seed.yaml.`,
  subcommands: [
    {
      usage: 'seed <file>',
      summary: 'apply a seed file',
      argName: 'seed file',
      async run({ arg: file, out }) {
        const text = await readSeedFile(file);
        // the seed's rules (and its YAML parser), loaded only for this command
        const { applySeed, parseSeedText, SeedError } = await import('../services/seed.js');
        await withDatabase(async ({ prisma: db }) => {
          try {
            const report = await applySeed(db, parseSeedText(text), progressLine());
            out.print(report, () =>
              [
                ...report.resources.map((r) => `API ${r.identifier}: ${r.action}`),
                ...report.clients.map((c) => `client ${c.clientId}: ${c.action}${c.clientSecret ? `\n  client_secret ${c.clientSecret} (shown once)` : ''}`),
              ].join('\n') || 'nothing to seed');
          } catch (err) {
            if (err instanceof SeedError) throw new CliError(`${file}: ${err.message}`, 1, err.problems.map((p) => `${file}: ${p}`));
            throw err;
          }
        });
      },
    },
  ],
};
