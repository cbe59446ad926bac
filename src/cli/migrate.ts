import { databaseConfig } from './context.js';
import type { Command } from './command.js';

export const migrateCommand: Command = {
  name: 'migrate',
  summary: 'apply database migrations',
  intro: `Applies pending migrations from prisma/<provider>/migrations to DATABASE_URL and
records them in _prisma_migrations. The server runs the same step at start.`,
  subcommands: [
    {
      usage: 'migrate',
      summary: 'apply database migrations',
      async run({ out }) {
        const database = databaseConfig();
        const { migrate } = await import('../storage/migrate.js');
        const result = await migrate(database);
        out.print({ database: database.kind, ...result }, () =>
          result.applied.length
            ? `applied ${result.applied.length} migration(s) to ${database.kind}: ${result.applied.join(', ')}`
            : `${database.kind} database is up to date (${result.alreadyApplied} migration(s) applied)`);
      },
    },
  ],
};
