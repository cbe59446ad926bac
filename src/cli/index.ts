import { setFlagsFromString } from 'node:v8';
import { CliError } from './context.js';
import { runCommand, type Command } from './command.js';
import { clientsCommand } from './clients.js';
import { apisCommand } from './apis.js';
import { consentsCommand } from './consents.js';
import { accountsCommand } from './accounts.js';
import { keysCommand } from './keys.js';
import { registrationTokensCommand } from './registration-tokens.js';
import { seedCommand } from './seed.js';
import { migrateCommand } from './migrate.js';
import { auditCommand } from './audit.js';
import { webhooksCommand } from './webhooks.js';
import { DEFAULT_DATABASE_URL } from '../common/defaults.js';
import { suggestion } from './suggest.js';

/*
 * A command lives well under a second. By default V8 starts optimising the hot
 * functions of Prisma's query compiler (WebAssembly) on background threads
 * during the first query, and the process then waits for that work at exit:
 * about 0.1 s of a `clients list`, more on a busy machine, for code that never
 * runs again. A higher budget lets a long command (a large seed) still get
 * optimised code; a short one exits at once. Set before Prisma compiles it.
 */
setFlagsFromString('--wasm-tiering-budget=50000000');

const COMMANDS: Command[] = [clientsCommand, apisCommand, accountsCommand, consentsCommand, keysCommand, registrationTokensCommand, auditCommand, webhooksCommand, seedCommand, migrateCommand];

/** One line per command: its forms and what it is for. */
function overview(): string {
  const rows = COMMANDS.map((c) => {
    const forms = c.subcommands.length === 1 && c.subcommands[0].usage.startsWith(c.name)
      ? c.subcommands[0].usage
      : `${c.name} ${c.subcommands.map((s) => s.usage.split(' ')[0]).join('|')}`;
    const aliases = c.aliases?.length ? ` (also: ${c.aliases.join(', ')})` : '';
    return [forms, `${c.summary}${aliases}`];
  });
  const width = Math.max(...rows.map(([f]) => f.length)) + 3;
  return `Usage: gatehouse <command> [options]

Commands:
${rows.map(([f, s]) => `  ${f.padEnd(width)}${s}`).join('\n')}

Every command takes --help and --json. The database comes from DATABASE_URL
(or .env); the default is ${DEFAULT_DATABASE_URL}.
Exit codes: 0 success, 1 failure, 2 bad usage.
`;
}

async function run(argv: string[]): Promise<void> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(overview());
    return;
  }
  const command = COMMANDS.find((c) => c.name === name || c.aliases?.includes(name));
  if (!command) {
    const known = COMMANDS.flatMap((c) => [c.name, ...(c.aliases ?? [])]);
    throw new CliError(`unknown command: ${name}${suggestion(name, known, (n) => n, 'gatehouse --help')}`, 2);
  }
  await runCommand(command, name, rest);
}

/** One line whatever the input echoed in it: control characters are written as escapes. */
const printable = (text: string) => text.toWellFormed().replace(/[\u0000-\u001f\u007f]/g, (c) => JSON.stringify(c).slice(1, -1));

/** Exits once stdout and stderr are flushed: a pipe takes large output asynchronously. */
function exit(code: number): void {
  process.stdout.write('', () => process.stderr.write('', () => process.exit(code)));
}

run(process.argv.slice(2)).then(
  () => exit(0),
  (err: unknown) => {
    if (err instanceof CliError) {
      process.stderr.write(`gatehouse: ${printable(err.message)}\n`);
      for (const line of err.details) process.stderr.write(`${printable(line)}\n`);
      return exit(err.exitCode);
    }
    // Unexpected: one line, no stack trace. Prisma's first line only names the call
    // ("Invalid `prisma.x()` invocation:"); the cause is its last line.
    const lines = String((err as Error)?.message ?? err).split('\n').map((l) => l.trim()).filter(Boolean);
    const line = (lines[0]?.endsWith('invocation:') ? `${lines[0]} ${lines.at(-1)}` : lines[0]) ?? 'unexpected error';
    process.stderr.write(`gatehouse: ${printable(line)}\n`);
    exit(1);
  },
);
