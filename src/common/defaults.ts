/** Defaults that more than one entry point (server, CLI) relies on. */

/** An embedded SQLite file, created and migrated on first start. */
export const DEFAULT_DATABASE_URL = 'file:./data/gatehouse.db';
