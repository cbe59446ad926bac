import type { ConsentRecord } from '../services/consents.js';
import { CliError, usageError, withDatabase } from './context.js';
import type { Command, Flags, Values } from './command.js';

/** The rules, loaded when a subcommand runs (not for --help). */
const service = () => import('../services/consents.js');

const filterFlags: Flags = {
  account: { type: 'string', arg: '<sub>', help: 'one account (its sub)' },
  client: { type: 'string', arg: '<client-id>', help: 'one client' },
};

const filterOf = (values: Values) => ({
  ...(values.account ? { accountId: String(values.account) } : {}),
  ...(values.client ? { clientId: String(values.client) } : {}),
});

const describeConsent = (c: ConsentRecord) => `${c.accountId}  ${c.clientId}  granted ${c.updatedAt.toISOString()}`;

export const consentsCommand: Command = {
  name: 'consents',
  aliases: ['grants'],
  summary: 'remembered consents (account x client)',
  intro: `A consent is what a person (account) approved for an app (client); Gatehouse
remembers it, as an oidc-provider grant, so the person is not asked again.`,
  subcommands: [
    {
      usage: 'list',
      summary: 'list remembered consents',
      flags: filterFlags,
      async run({ values, out }) {
        const { listConsents } = await service();
        await withDatabase(async ({ prisma: db }) => {
          const consents = await listConsents(db, filterOf(values));
          out.print(consents, () => consents.map(describeConsent).join('\n') || 'no remembered consents');
        });
      },
    },
    {
      usage: 'revoke',
      summary: 'forget them and revoke their grants (refresh tokens and stored access tokens at once; JWTs expire by TTL); needs --account or --client',
      flags: filterFlags,
      async run({ values, out }) {
        const filter = filterOf(values);
        if (!Object.keys(filter).length) throw usageError('revoke needs --account or --client');
        const { withdrawConsents } = await service();
        await withDatabase(async ({ prisma: db }) => {
          const revoked = await withdrawConsents(db, filter);
          if (!revoked.length) throw new CliError('no remembered consent matches');
          out.print({ revoked }, () => `revoked ${revoked.length} grant(s)\n${revoked.map(describeConsent).join('\n')}`);
        });
      },
    },
  ],
};
