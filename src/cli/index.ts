import { CliError } from './context.js';
import { clientsCommand } from './clients.js';
import { resourcesCommand } from './resources.js';
import { seedCommand } from './seed.js';
import { migrateCommand } from './migrate.js';
import { grantsCommand } from './grants.js';
import { keysCommand } from './keys.js';
import { registrationTokensCommand } from './registration-tokens.js';

const HELP = `Usage: gatehouse <command> [options]

Commands:
  clients create|list|show|update|delete|rotate-secret   manage clients (apps and services)
  resources create|list|show|delete                      manage APIs (resource servers)
  grants list|revoke                                     remembered consents (account x client)
  keys list|rotate                                       signing keys
  registration-tokens create|list|revoke                 initial access tokens for dynamic registration
  seed <file>                                            apply a JSON/YAML file of APIs and clients
  migrate                                                apply database migrations

Every command takes --help and --json. The database comes from DATABASE_URL
(or .env); the default is file:./data/gatehouse.db.
Exit codes: 0 success, 1 failure, 2 bad usage.
`;

const commands: Record<string, (args: string[]) => Promise<void>> = {
  clients: clientsCommand,
  resources: resourcesCommand,
  grants: grantsCommand,
  keys: keysCommand,
  'registration-tokens': registrationTokensCommand,
  seed: seedCommand,
  migrate: migrateCommand,
};

async function run(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(HELP);
    return;
  }
  const handler = commands[command];
  if (!handler) throw new CliError(`unknown command: ${command} (see gatehouse --help)`, 2);
  await handler(rest);
}

run(process.argv.slice(2)).then(
  () => process.exit(0),
  (err: unknown) => {
    if (err instanceof CliError) {
      process.stderr.write(`gatehouse: ${err.message}\n`);
      for (const line of err.details) process.stderr.write(`${line}\n`);
      process.exit(err.exitCode);
    }
    // Unexpected: one line, no stack trace.
    process.stderr.write(`gatehouse: ${(err as Error).message ?? String(err)}\n`);
    process.exit(1);
  },
);
