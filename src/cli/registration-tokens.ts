import type { RegistrationTokenInfo } from '../services/registration-tokens.js';
import { SINGLE_USE_POLICY } from '../common/protocol.js';
import { CliError, serverConfig, usageError, withDatabase } from './context.js';
import type { Command } from './command.js';

/** The rules, loaded when a subcommand runs (not for --help). */
const service = () => import('../services/registration-tokens.js');

/**
 * The service's MIN_REVOKE_PREFIX, for the help text without loading the
 * service (and the storage behind it); test/unit/cli-help.test.ts keeps them equal.
 */
export const MIN_REVOKE_PREFIX = 6;

/** 10 years, in seconds */
const MAX_EXPIRES_IN = 10 * 365 * 24 * 60 * 60;

const describeToken = (t: RegistrationTokenInfo, isSingleUse: (policies: readonly string[] | undefined) => boolean) =>
  `${t.prefix}…  ${t.expiresAt ? `expires ${t.expiresAt.toISOString()}` : 'never expires'}${isSingleUse(t.policies) ? `  single-use${t.used ? ' (used)' : ''}` : ''}`;

export const registrationTokensCommand: Command = {
  name: 'registration-tokens',
  summary: 'initial access tokens for dynamic registration',
  intro: `Initial access tokens let third-party developers register their apps themselves
(POST /reg, RFC 7591) when REGISTRATION=initial-access-token (the default).`,
  subcommands: [
    {
      usage: 'create',
      summary: 'make a token; it is shown once',
      flags: {
        'expires-in': { type: 'string', arg: '<seconds>', help: 'lifetime in seconds (default 86400; 0 = never expires)' },
        'single-use': { type: 'boolean', help: 'the token registers one client, then stops working' },
      },
      async run({ values, out }) {
        const raw = values['expires-in'];
        if (raw !== undefined && !/^\d+$/.test(String(raw))) throw usageError('--expires-in must be a whole number of seconds');
        if (raw !== undefined && Number(raw) > MAX_EXPIRES_IN) throw usageError(`--expires-in must be at most ${MAX_EXPIRES_IN} seconds (10 years)`);
        const expiresIn = raw === undefined ? 86_400 : Number(raw);
        const config = await serverConfig();
        if (config.registration !== 'initial-access-token') {
          throw new CliError(`REGISTRATION is ${config.registration}: initial access tokens are only used with REGISTRATION=initial-access-token`);
        }
        await withDatabase(async ({ prisma: db, hot }) => {
          // oidc-provider makes and stores the token, exactly as the server will read it.
          // Imported here: only this command needs oidc-provider.
          const { pino } = await import('pino');
          const { createProvider } = await import('../oidc/provider.js');
          const { readSigningKeys } = await import('../services/keys.js');
          const { AdminDataCache } = await import('../services/admin-data-cache.js');
          const { SecretVerifier } = await import('../services/client-secrets.js');
          const { providerViews } = await import('../interactions/provider-views.js');
          const logger = pino({ level: 'silent' });
          const provider = createProvider({
            config, db, hot, cache: new AdminDataCache(db, logger, 60_000), keys: await readSigningKeys(db, config.keyEncryptionKey),
            views: providerViews, verifier: new SecretVerifier(), logger,
          });
          const token = await new provider.InitialAccessToken({
            ...(expiresIn ? { expiresIn } : {}),
            ...(values['single-use'] ? { policies: [SINGLE_USE_POLICY] } : {}),
          }).save();
          const expiresAt = expiresIn ? new Date(Date.now() + expiresIn * 1000) : null;
          const { auditRegistrationTokenCreated, tokenPrefix } = await service();
          await auditRegistrationTokenCreated(db, token, { expiresAt, singleUse: Boolean(values['single-use']) });
          out.print(
            { token, prefix: tokenPrefix(token), expiresAt, singleUse: Boolean(values['single-use']) },
            () => `initial access token  ${token}\n(shown once; send it as "Authorization: Bearer <token>" to POST ${config.issuer}/reg)\n` +
              `expires  ${expiresAt?.toISOString() ?? 'never'}${values['single-use'] ? '\nsingle-use' : ''}`,
          );
        });
      },
    },
    {
      usage: 'list',
      summary: 'tokens that have not expired',
      async run({ out }) {
        const { isSingleUse, listRegistrationTokens } = await service();
        await withDatabase(async ({ prisma: db }) => {
          const tokens = await listRegistrationTokens(db, new Date());
          out.print(tokens, () => tokens.map((t) => describeToken(t, isSingleUse)).join('\n') || 'no initial access tokens');
        });
      },
    },
    {
      usage: 'revoke <prefix>',
      summary: `delete the token starting with <prefix> (at least ${MIN_REVOKE_PREFIX} characters; a prefix that starts with - goes after --, e.g. revoke -- -Ab3xYz)`,
      argName: 'token prefix',
      async run({ arg: prefix, out }) {
        if (prefix.length < MIN_REVOKE_PREFIX) throw usageError(`the prefix must have at least ${MIN_REVOKE_PREFIX} characters`);
        const { revokeRegistrationToken } = await service();
        await withDatabase(async ({ prisma: db }) => {
          await revokeRegistrationToken(db, prefix);
          out.print({ revoked: prefix }, () => `revoked the token starting with ${prefix}`);
        });
      },
    },
  ],
};
