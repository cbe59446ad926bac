import type Provider from 'oidc-provider';
import { errors, type KoaContextWithOIDC, type ResourceServer, type ResourceServerInstance } from 'oidc-provider';
import { createLocalJWKSet, errors as joseErrors, jwtVerify, type JWK } from 'jose';
import validateDpop, { checkDpopReplay } from 'oidc-provider/lib/helpers/validate_dpop.js';
import { SIGNING_ALGS, TOKEN_EXCHANGE_GRANT } from '../common/protocol.js';
import type { AdminDataCache } from '../services/admin-data-cache.js';
import type { Db } from '../storage/database.js';
import { recordAuditQuietly } from '../services/audit.js';
import type { HotStatements } from '../storage/hot-statements.js';
import { findAccount } from '../services/accounts.js';
import { isJwtAccessTokenRevoked } from '../services/access-tokens.js';
import { PayloadStore } from '../storage/oidc-payloads.js';
import { rememberedGrantId } from '../services/consents.js';
import {
  ACCESS_TOKEN_TYPE, APP_CLAIM, decideExchange, ExchangeRefused, readExchangeRequest, subjectFromJwtClaims, subjectFromStoredToken,
  type Actor, type ExchangeParams, type SubjectToken,
} from '../services/token-exchange.js';
import { RESOURCES, SCOPES } from './client-metadata.js';
import { resourceServerInfo } from './resource-indicators.js';
import { publicJwk } from '../common/jwk.js';

/**
 * RFC 8693 token exchange at /token: an API's own credential exchanges a
 * person's access token (a JWT or an opaque token Gatehouse issued) for an
 * access token to a downstream API, with the person as `sub` and the
 * exchanging client in `act` (nested when the subject token had one). The
 * rules are in services/token-exchange.ts; here the subject token and the
 * person's grant to the app are read, and the new token is made with
 * oidc-provider's own AccessToken model, so its format, lifetime, audience and
 * signature follow the target API's settings (resource-indicators.ts), like
 * every other token.
 *
 * No Grant is created: oidc-provider checks one only for tokens that carry a
 * `grantId`, and UserInfo refuses tokens with an audience. The person's grant
 * to the app (the token's own grant, or the remembered consent) is read as the
 * evidence of what they consented to at the target API. A DPoP proof binds the
 * new token (`cnf.jkt`), as oidc-provider's own grants do; a DPoP-bound subject
 * token needs a proof of its own key.
 * @see https://www.rfc-editor.org/rfc/rfc8693
 */

export interface TokenExchangeDeps {
  cache: AdminDataCache;
  /** for the audit trail */
  db: Db;
  onAuditError: (err: unknown) => void;
  hot: HotStatements;
  /** the provider's signing keys (private JWKs): their public halves verify JWT subject tokens */
  keys: JWK[];
  now?: () => number;
}

/** RFC 8693 §2.1 (and RFC 8707's `resource`); oidc-provider drops every other parameter. */
const PARAMETERS = ['subject_token', 'subject_token_type', 'actor_token', 'actor_token_type', 'requested_token_type', 'resource', 'audience', 'scope'];
/** may be repeated: more than one target is then refused with invalid_target, not invalid_request */
const REPEATABLE = ['resource', 'audience'];

/** oidc-provider's error for a refusal; its descriptions are meant for the client. */
function oauthError(err: ExchangeRefused): Error {
  switch (err.code) {
    // RFC 8693 §2.2.2: a bad request, and a subject token that is invalid or unacceptable by policy
    case 'invalid_request':
      return new errors.InvalidRequest(err.message);
    case 'unauthorized_client':
      return new errors.UnauthorizedClient(err.message);
    case 'invalid_target':
      return new errors.InvalidTarget(err.message);
    case 'invalid_scope':
      return new errors.InvalidScope(err.message, '');
    case 'invalid_dpop_proof':
      return new errors.InvalidDpopProof(err.message);
  }
}

/** oidc-provider's ResourceServer class (`provider.ResourceServer`; its types leave it out). */
type ResourceServerClass = new (identifier: string, info: ResourceServer) => ResourceServerInstance;

/** The claims an exchanged token carries besides oidc-provider's own. */
type ExchangedClaims = { act: Actor; [APP_CLAIM]: string };

/** The claims of each exchanged token, until it is saved. */
const exchanged = new WeakMap<object, ExchangedClaims>();

/**
 * oidc-provider's `extraTokenClaims` (configuration.ts): `act` and the app
 * (APP_CLAIM) for exchanged tokens, which oidc-provider writes into JWT claims
 * and introspection answers; nothing for any other token.
 */
export async function exchangedTokenClaims(_ctx: unknown, token: object): Promise<ExchangedClaims | undefined> {
  return exchanged.get(token);
}

/** How the grant reads the subject token (a JWT this provider signed, or a stored opaque one) and what the person granted its app. */
function subjectReaders(provider: Provider, deps: TokenExchangeDeps) {
  const now = deps.now ?? Date.now;
  const jwks = createLocalJWKSet({ keys: deps.keys.map(publicJwk) });
  const revocations = new PayloadStore(deps.hot);

  /** An RFC 9068 JWT access token this provider signed, still valid. */
  async function jwtSubject(token: string): Promise<SubjectToken> {
    try {
      const { payload } = await jwtVerify(token, jwks, {
        issuer: provider.issuer,
        typ: 'at+jwt',
        algorithms: [...SIGNING_ALGS],
        currentDate: new Date(now()),
        requiredClaims: ['exp', 'sub', 'client_id'],
      });
      // RFC 7009: a revoked JWT is recorded until it expires (services/access-tokens.ts)
      if (await isJwtAccessTokenRevoked(revocations, payload)) throw new ExchangeRefused('invalid_request', 'subject token was revoked');
      return subjectFromJwtClaims(payload);
    } catch (err) {
      if (err instanceof ExchangeRefused) throw err;
      if (err instanceof joseErrors.JWTExpired) throw new ExchangeRefused('invalid_request', 'subject token has expired');
      throw new ExchangeRefused('invalid_request', 'subject token is not a valid access token of this server');
    }
  }

  /** An opaque access token from storage: found (not expired, not revoked), its grant still there. */
  async function storedSubject(token: string): Promise<SubjectToken> {
    const found = await provider.AccessToken.find(token);
    if (!found) {
      const client = await provider.ClientCredentials.find(token);
      if (client?.isValid) throw new ExchangeRefused('invalid_request', 'subject token has no subject person');
      throw new ExchangeRefused('invalid_request', 'subject token is not a valid access token of this server');
    }
    if (found.grantId) {
      // as introspection does: a token whose grant was revoked or ended is not active
      const grant = await provider.Grant.find(found.grantId);
      if (!grant || grant.clientId !== found.clientId || grant.accountId !== found.accountId) {
        throw new ExchangeRefused('invalid_request', 'subject token is not a valid access token of this server');
      }
    }
    return subjectFromStoredToken(found);
  }

  /**
   * The scopes of the target API the person granted the app (subject.app), or
   * undefined when no grant of theirs for that app is in force: the subject
   * token's own grant when it has one, else the consent the person gave the app.
   */
  async function grantedAtTarget(subject: SubjectToken, target: string): Promise<string[] | undefined> {
    const { accountId, app } = subject;
    if (!accountId || !app) return undefined;
    const grantId = subject.grantId ?? (await rememberedGrantId(deps.hot, accountId, app));
    const grant = grantId ? await provider.Grant.find(grantId) : undefined;
    if (!grant || grant.accountId !== accountId || grant.clientId !== app) return undefined;
    return grant.getResourceScope(target).split(' ').filter(Boolean);
  }

  return { jwtSubject, storedSubject, grantedAtTarget };
}

export function installTokenExchange(provider: Provider, deps: TokenExchangeDeps): void {
  const now = deps.now ?? Date.now;
  const serverInfo = resourceServerInfo(deps.cache);
  const { jwtSubject, storedSubject, grantedAtTarget } = subjectReaders(provider, deps);

  async function exchange(ctx: KoaContextWithOIDC): Promise<void> {
    const client = ctx.oidc.client!;
    const params = ctx.oidc.params as ExchangeParams & { scope?: string };
    const { subjectToken, target } = readExchangeRequest(params);
    const dPoP = await validateDpop(provider, ctx);

    const subject = subjectToken.split('.').length === 3 ? await jwtSubject(subjectToken) : await storedSubject(subjectToken);
    const record = await deps.cache.client(client.clientId);
    const nowSeconds = Math.floor(now() / 1000);
    const metadata = client as unknown as Record<string, unknown>;
    const decision = decideExchange({
      client: {
        clientId: client.clientId,
        resources: (metadata[RESOURCES] as string[] | undefined) ?? [],
        scopes: (metadata[SCOPES] as string[] | undefined) ?? [],
        dynamic: record?.dynamic ?? false,
      },
      subject,
      subjectApis: await Promise.all(subject.audiences.map((aud) => deps.cache.api(aud))),
      target: await deps.cache.api(target),
      requestedScope: params.scope,
      granted: await grantedAtTarget(subject, target),
      proofJkt: dPoP?.thumbprint,
      issuer: provider.issuer,
      now: nowSeconds,
    });
    // the person must still exist (a client_credentials token never gets here)
    if (!(await findAccount(deps.hot, decision.accountId))) throw new ExchangeRefused('invalid_request', "subject token's person is unknown");

    if (!dPoP && client.dpopBoundAccessTokens) throw new errors.InvalidGrant('DPoP proof JWT not provided');

    // format, lifetime, audience and signing as for every token of the target API
    const { ResourceServer } = provider as unknown as { ResourceServer: ResourceServerClass };
    const resourceServer = new ResourceServer(target, await serverInfo(ctx, target, client));
    const token = new provider.AccessToken({
      accountId: decision.accountId,
      client,
      gty: TOKEN_EXCHANGE_GRANT,
      resourceServer,
      scope: decision.scopes.join(' '),
      // exp from the same clock as the decision: never past the subject token's
      iat: nowSeconds,
      exp: nowSeconds + decision.expiresIn,
      expiresIn: decision.expiresIn,
    } as unknown as ConstructorParameters<typeof provider.AccessToken>[0]);
    if (dPoP) {
      await checkDpopReplay(provider, ctx, dPoP, client.clientId, errors.InvalidGrant);
      token.setThumbprint('jkt', dPoP.thumbprint);
    }
    exchanged.set(token, { act: decision.act, [APP_CLAIM]: decision.app });
    ctx.oidc.entity('AccessToken', token);
    const value = await token.save();

    // who (the exchanging client), for whom (the person), through which app's grant; never a token
    await recordAuditQuietly(deps.db, {
      action: 'token.exchanged',
      actor: { type: 'client', id: client.clientId, address: ctx.ip },
      target: { type: 'account', id: decision.accountId },
      details: {
        target, scope: token.scope, act: decision.act, app: decision.app,
        subjectApis: subject.audiences, subjectClientId: subject.clientId,
      },
    }, deps.onAuditError);

    // RFC 8693 §2.2.1
    ctx.body = {
      access_token: value,
      issued_token_type: ACCESS_TOKEN_TYPE,
      token_type: token.tokenType,
      expires_in: token.expiration,
      scope: token.scope,
    };
  }

  provider.registerGrantType(
    TOKEN_EXCHANGE_GRANT,
    async (ctx) => {
      try {
        await exchange(ctx);
      } catch (err) {
        throw err instanceof ExchangeRefused ? oauthError(err) : err;
      }
    },
    PARAMETERS,
    REPEATABLE,
  );
}
