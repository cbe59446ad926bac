import { databaseKinds, migratedDatabase } from '../support/databases.js';
import type { Database } from '../../src/storage/database.js';
import { createClient, deleteClient } from '../../src/services/clients.js';
import { createApi } from '../../src/services/apis.js';
import { ServiceError } from '../../src/services/errors.js';

/**
 * Races between writers end in the services' own errors, never in a database
 * error: storage recognises Prisma's failures once (storage/errors.ts) and
 * each service says what they mean.
 */
describe.each(databaseKinds())('services under racing writes on %s', (kind) => {
  let database: Database;
  let close: () => Promise<void>;

  beforeAll(async () => {
    ({ database, close } = await migratedDatabase(kind));
  });
  afterAll(() => close?.());

  /** How the settled results split: fulfilled count, and the codes and messages of the refusals. */
  function outcome(results: PromiseSettledResult<unknown>[]) {
    const refusals = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected').map((r) => r.reason as Error);
    for (const e of refusals) expect(e).toBeInstanceOf(ServiceError);
    return {
      won: results.filter((r) => r.status === 'fulfilled').length,
      refused: [...new Set(refusals.map((e) => `${(e as ServiceError).code}: ${e.message}`))],
    };
  }

  it('lets one of ten racing creates of a client id win; the others are told it exists', async () => {
    const results = await Promise.allSettled(Array.from({ length: 10 }, () => createClient(database.prisma, { clientId: 'racer', name: 'Racer' })));
    expect(outcome(results)).toEqual({ won: 1, refused: ['conflict: client racer already exists'] });
  });

  it('lets one of ten racing creates of an API win', async () => {
    const results = await Promise.allSettled(Array.from({ length: 10 }, () => createApi(database.prisma, { identifier: 'https://race.example.com' })));
    expect(outcome(results)).toEqual({ won: 1, refused: ['conflict: API https://race.example.com already exists'] });
  });

  it('lets one of ten racing deletes win; the others find no client', async () => {
    await createClient(database.prisma, { clientId: 'doomed', name: 'Doomed' });
    const results = await Promise.allSettled(Array.from({ length: 10 }, () => deleteClient(database.prisma, 'doomed')));
    expect(outcome(results)).toEqual({ won: 1, refused: ['not_found: no client with id doomed'] });
  });
});
