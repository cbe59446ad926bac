import type { FindAccount } from 'oidc-provider';
import type { HotStatements } from '../storage/hot-statements.js';
import { findAccount } from '../services/accounts.js';

/**
 * `findAccount`: the claims of one of our accounts. oidc-provider keeps only
 * the claims the granted scopes allow.
 * @see https://github.com/panva/node-oidc-provider/blob/main/docs/README.md#findaccount
 */
export function accountClaims(hot: HotStatements): FindAccount {
  return async (_ctx, sub) => {
    const account = await findAccount(hot, sub);
    if (!account) return undefined;
    return {
      accountId: account.id,
      async claims() {
        return {
          sub: account.id,
          ...(account.email ? { email: account.email, email_verified: account.emailVerified } : {}),
          ...(account.name ? { name: account.name } : {}),
          ...(account.username ? { preferred_username: account.username } : {}),
          ...(account.picture ? { picture: account.picture } : {}),
        };
      },
    };
  };
}
