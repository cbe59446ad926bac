import { errors, type Configuration, type KoaContextWithOIDC } from 'oidc-provider';
import type { Db } from '../storage/database.js';
import { consumeSingleUseToken, releaseSingleUseToken } from '../services/registration-tokens.js';
import { newClientId } from '../services/clients.js';
import { SINGLE_USE_POLICY, type RegistrationMode } from '../common/protocol.js';

/**
 * Dynamic client registration (RFC 7591) and management (RFC 7592), done by
 * oidc-provider. What Gatehouse adds here: initial access tokens with a
 * "single-use" policy. Rate limits, hashed secrets and response scrubbing are
 * in registration-guard.ts; registered clients are stored by ClientAdapter.upsert.
 * @see https://github.com/panva/node-oidc-provider/blob/main/docs/README.md#featuresregistration
 */

/** Where the single-use policy notes the token it consumed for this request. */
const CONSUMED = 'gatehouseConsumedInitialAccessToken';

type RegistrationFeatures = Pick<NonNullable<Configuration['features']>, 'registration' | 'registrationManagement'>;

export function registrationFeatures(mode: RegistrationMode, db: Db, now: () => number = Date.now): RegistrationFeatures {
  const management = { enabled: true, rotateRegistrationAccessToken: true };
  if (mode === 'off') return { registration: { enabled: false }, registrationManagement: { enabled: false } };
  // client ids like the CLI's: hex, never starting with "-" (it would read as an option in the CLI)
  if (mode === 'open') return { registration: { enabled: true, initialAccessToken: false, idFactory: newClientId }, registrationManagement: management };
  return {
    registration: {
      enabled: true,
      idFactory: newClientId,
      initialAccessToken: true,
      // policies exist only with stored initial access tokens
      policies: {
        /**
         * Consumes the token atomically, so two racing registrations cannot
         * both use it. It is consumed before the metadata is validated
         * (policies run first), so releaseOnFailure gives it back if the
         * registration then fails.
         */
        async [SINGLE_USE_POLICY](ctx: KoaContextWithOIDC) {
          const iat = ctx.oidc.entities.InitialAccessToken;
          if (!iat) return; // a later update through the registration access token
          if (!(await consumeSingleUseToken(db, iat.jti, new Date(now())))) throw new errors.InvalidToken('initial access token already used');
          ctx.state[CONSUMED] = iat.jti;
        },
      },
    },
    registrationManagement: management,
  };
}

/**
 * A registration that failed after its single-use token was consumed gives the
 * token back (a typo does not burn it). Called by the registration guard once
 * oidc-provider has answered, before the response leaves.
 */
export async function releaseIfFailed(ctx: { status: number; state: Record<string, unknown> }, db: Db): Promise<void> {
  const jti = ctx.state[CONSUMED];
  if (typeof jti === 'string' && ctx.status >= 400) await releaseSingleUseToken(db, jti);
}
