import { pino } from 'pino';
import { Catalog } from '../storage/catalog.js';
import { listRegistrationTokens, revokeRegistrationToken, type RegistrationTokenInfo } from '../storage/registration-tokens.js';
import { CliError, output, parse, serverConfig, usageError, withDatabase } from './context.js';

export const REGISTRATION_TOKENS_HELP = `Usage: gatehouse registration-tokens <command> [options]

Initial access tokens let third-party developers register their apps themselves
(POST /reg, RFC 7591) when REGISTRATION=initial-access-token (the default).

Commands:
  create [--expires-in <seconds>] [--single-use]   make a token; it is shown once
         --expires-in   lifetime in seconds (default 86400; 0 = never expires)
         --single-use   the token registers one client, then stops working
  list                                             tokens that have not expired
  revoke <prefix>                                  delete the token starting with <prefix>
`;

const describeToken = (t: RegistrationTokenInfo) =>
  `${t.prefix}…  ${t.expiresAt ? `expires ${t.expiresAt.toISOString()}` : 'never expires'}${t.policies.includes('single-use') ? `  single-use${t.used ? ' (used)' : ''}` : ''}`;

export async function registrationTokensCommand(args: string[]): Promise<void> {
  const [sub, ...rest] = args;
  switch (sub) {
    case 'create': {
      const { values, positionals } = parse(rest, { 'expires-in': { type: 'string' }, 'single-use': { type: 'boolean' } });
      if (values.help) return void process.stdout.write(REGISTRATION_TOKENS_HELP);
      if (positionals.length) throw usageError(`unexpected argument: ${positionals[0]}`);
      const expiresIn = values['expires-in'] === undefined ? 86_400 : Number(values['expires-in']);
      if (!Number.isInteger(expiresIn) || expiresIn < 0 || !/^\d+$/.test(String(values['expires-in'] ?? '0'))) {
        throw usageError('--expires-in must be a whole number of seconds');
      }
      const config = serverConfig();
      if (config.registration !== 'initial-access-token') {
        throw new CliError(`REGISTRATION is ${config.registration}: initial access tokens are only used with REGISTRATION=initial-access-token`);
      }
      await withDatabase(async ({ prisma: db }) => {
        // oidc-provider makes and stores the token, exactly as the server will read it.
        const { loadSigningKeys } = await import('../oidc/keys.js');
        const { createProvider } = await import('../oidc/provider.js');
        const { SecretVerifier } = await import('../oidc/client-secrets.js');
        const { SINGLE_USE } = await import('../oidc/registration.js');
        const logger = pino({ level: 'silent' });
        const provider = createProvider({
          config, db, catalog: new Catalog(db, logger, 60_000), keys: await loadSigningKeys(db, config.keyEncryptionKey),
          verifier: new SecretVerifier(), logger,
        });
        const token = await new provider.InitialAccessToken({
          ...(expiresIn ? { expiresIn } : {}),
          ...(values['single-use'] ? { policies: [SINGLE_USE] } : {}),
        }).save();
        const expiresAt = expiresIn ? new Date(Date.now() + expiresIn * 1000) : null;
        output(Boolean(values.json)).print(
          { token, prefix: token.slice(0, 8), expiresAt, singleUse: Boolean(values['single-use']) },
          () => `initial access token  ${token}\n(shown once; send it as "Authorization: Bearer <token>" to POST ${config.issuer}/reg)\n` +
            `expires  ${expiresAt?.toISOString() ?? 'never'}${values['single-use'] ? '\nsingle-use' : ''}`,
        );
      });
      return;
    }
    case 'list': {
      const { values, positionals } = parse(rest, {});
      if (values.help) return void process.stdout.write(REGISTRATION_TOKENS_HELP);
      if (positionals.length) throw usageError(`unexpected argument: ${positionals[0]}`);
      await withDatabase(async ({ prisma: db }) => {
        const tokens = await listRegistrationTokens(db, new Date());
        output(Boolean(values.json)).print(tokens, () => tokens.map(describeToken).join('\n') || 'no initial access tokens');
      });
      return;
    }
    case 'revoke': {
      const { values, positionals } = parse(rest, {});
      if (values.help) return void process.stdout.write(REGISTRATION_TOKENS_HELP);
      if (positionals.length !== 1) throw usageError('expected exactly one token prefix');
      const prefix = positionals[0];
      if (prefix.length < 6) throw usageError('the prefix must have at least 6 characters');
      await withDatabase(async ({ prisma: db }) => {
        const matched = await revokeRegistrationToken(db, prefix);
        if (matched === 0) throw new CliError(`no initial access token starts with ${prefix}`);
        if (matched > 1) throw new CliError(`${matched} tokens start with ${prefix}: give more characters`);
        output(Boolean(values.json)).print({ revoked: prefix }, () => `revoked the token starting with ${prefix}`);
      });
      return;
    }
    case undefined:
    case '--help':
    case '-h':
    case 'help':
      process.stdout.write(REGISTRATION_TOKENS_HELP);
      return;
    default:
      throw usageError(`unknown command: registration-tokens ${sub} (see gatehouse registration-tokens --help)`);
  }
}
