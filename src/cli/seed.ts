import { readFile } from 'node:fs/promises';
import { applySeed, parseSeedText, SeedError } from '../storage/seed.js';
import { CliError, onePositional, output, parse, withDatabase } from './context.js';

export const SEED_HELP = `Usage: gatehouse seed <file> [--json]

Applies a JSON or YAML file of APIs ("resources") and clients, idempotently, in one
transaction. The whole file is validated first: every problem is listed with its
path, and nothing is written if there is any. A confidential client without a
"secret" gets one generated on creation, shown once; a "secret" in the file is
hashed on import. See examples/seed.yaml.
`;

export async function seedCommand(args: string[]): Promise<void> {
  const { values, positionals } = parse(args, {});
  if (values.help) return void process.stdout.write(SEED_HELP);
  const file = onePositional(positionals, 'seed file');
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? '';
    const reason = { ENOENT: 'no such file', EACCES: 'permission denied', EISDIR: 'it is a directory' }[code] ?? (err as Error).message;
    throw new CliError(`cannot read ${file}: ${reason}`);
  }
  await withDatabase(async ({ prisma: db }) => {
    try {
      const report = await applySeed(db, parseSeedText(text));
      output(Boolean(values.json)).print(report, () =>
        [
          ...report.resources.map((r) => `API ${r.identifier}: ${r.action}`),
          ...report.clients.map((c) => `client ${c.clientId}: ${c.action}${c.clientSecret ? `\n  client_secret ${c.clientSecret} (shown once)` : ''}`),
        ].join('\n') || 'nothing to seed');
    } catch (err) {
      if (err instanceof SeedError) throw new CliError(`${file}: ${err.message}`, 1, err.problems.map((p) => `${file}: ${p}`));
      throw err;
    }
  });
}
