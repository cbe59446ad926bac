import { listConsents, revokeConsents, type ConsentRecord } from '../storage/consents.js';
import { CliError, output, parse, usageError, withDatabase } from './context.js';

export const GRANTS_HELP = `Usage: gatehouse grants <command> [options]

A grant is the consent a person (account) gave an app (client); Gatehouse
remembers it so the person is not asked again.

Commands:
  list [--account <sub>] [--client <client-id>]     list remembered consents
  revoke [--account <sub>] [--client <client-id>]   forget them and revoke their tokens
                                                    (refresh tokens and stored access
                                                    tokens at once; JWTs expire by TTL)

revoke needs at least one of --account and --client.
`;

const filterOptions = { account: { type: 'string' }, client: { type: 'string' } } as const;

function describeConsent(c: ConsentRecord) {
  return `${c.accountId}  ${c.clientId}  granted ${c.updatedAt.toISOString()}`;
}

export async function grantsCommand(args: string[]): Promise<void> {
  const [sub, ...rest] = args;
  switch (sub) {
    case 'list':
    case 'revoke': {
      const { values, positionals } = parse(rest, filterOptions);
      if (values.help) return void process.stdout.write(GRANTS_HELP);
      if (positionals.length) throw usageError(`unexpected argument: ${positionals[0]}`);
      const filter = {
        ...(values.account ? { accountId: String(values.account) } : {}),
        ...(values.client ? { clientId: String(values.client) } : {}),
      };
      if (sub === 'revoke' && !Object.keys(filter).length) throw usageError('revoke needs --account or --client');
      await withDatabase(async ({ prisma: db }) => {
        const out = output(Boolean(values.json));
        if (sub === 'list') {
          const consents = await listConsents(db, filter);
          out.print(consents, () => consents.map(describeConsent).join('\n') || 'no remembered consents');
          return;
        }
        const revoked = await revokeConsents(db, filter);
        if (!revoked.length) throw new CliError('no remembered consent matches');
        out.print({ revoked }, () => `revoked ${revoked.length} grant(s)\n${revoked.map(describeConsent).join('\n')}`);
      });
      return;
    }
    case undefined:
    case '--help':
    case '-h':
    case 'help':
      process.stdout.write(GRANTS_HELP);
      return;
    default:
      throw usageError(`unknown command: grants ${sub} (see gatehouse grants --help)`);
  }
}
