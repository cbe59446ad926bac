import { migrate } from '../storage/migrate.js';
import { databaseConfig, output, parse, usageError } from './context.js';

export const MIGRATE_HELP = `Usage: gatehouse migrate [--json]

Applies pending migrations from prisma/<provider>/migrations to DATABASE_URL and
records them in _prisma_migrations. The server runs the same step at start.
`;

export async function migrateCommand(args: string[]): Promise<void> {
  const { values, positionals } = parse(args, {});
  if (values.help) return void process.stdout.write(MIGRATE_HELP);
  if (positionals.length) throw usageError(`unexpected argument: ${positionals[0]}`);
  const database = databaseConfig();
  const result = await migrate(database);
  output(Boolean(values.json)).print({ database: database.kind, ...result }, () =>
    result.applied.length
      ? `applied ${result.applied.length} migration(s) to ${database.kind}: ${result.applied.join(', ')}`
      : `${database.kind} database is up to date (${result.alreadyApplied} migration(s) applied)`);
}
