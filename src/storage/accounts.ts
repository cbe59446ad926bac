import { randomBytes } from 'node:crypto';
import type { Db } from './database.js';
import type { UpstreamProfile } from '../federation/upstream.js';

export interface AccountRecord {
  /** Gatehouse's own stable `sub` */
  id: string;
  email: string | null;
  emailVerified: boolean;
  name: string | null;
  username: string | null;
  picture: string | null;
}

export interface SignInResult {
  account: AccountRecord;
  /** the account was created by this sign-in */
  created: boolean;
  /** the upstream identity was new and joined an existing account by verified email */
  linked: boolean;
}

const select = { id: true, email: true, emailVerified: true, name: true, username: true, picture: true } as const;

export function findAccount(db: Pick<Db, 'account'>, id: string): Promise<AccountRecord | null> {
  return db.account.findUnique({ where: { id }, select });
}

/** Our own `sub`: random, opaque, never derived from an upstream id. */
const newAccountId = () => randomBytes(16).toString('base64url');

const normalizeEmail = (email: string | null) => email?.trim().toLowerCase() || null;

/**
 * Claims the account takes from the upstream it signed in with, email included:
 * an email the upstream no longer asserts as verified is not kept.
 */
function claimsFrom(profile: UpstreamProfile) {
  const verified = Boolean(profile.email && profile.emailVerified);
  return {
    name: profile.name,
    username: profile.username,
    picture: profile.picture,
    email: verified ? normalizeEmail(profile.email) : null,
    emailVerified: verified,
  };
}

/**
 * Finds or creates the account for an upstream identity. A returning identity
 * finds its account. A new one joins an existing account only when linking is
 * on and both the upstream and the account assert the same *verified* email;
 * otherwise it gets a new account.
 */
export async function signInWith(db: Db, profile: UpstreamProfile, options: { linkVerifiedEmails: boolean }): Promise<SignInResult> {
  const identityData = {
    email: normalizeEmail(profile.email),
    emailVerified: profile.emailVerified,
    profile: profile.raw as object,
  };
  const attempt = () =>
    db.$transaction(async (tx) => {
      const key = { provider_subject: { provider: profile.provider, subject: profile.subject } };
      const identity = await tx.federatedIdentity.findUnique({ where: key });
      if (identity) {
        await tx.federatedIdentity.update({ where: key, data: identityData });
        const account = await tx.account.update({ where: { id: identity.accountId }, data: claimsFrom(profile), select });
        return { account, created: false, linked: false };
      }
      const email = normalizeEmail(profile.email);
      if (options.linkVerifiedEmails && email && profile.emailVerified) {
        // the other side must assert it too: an identity whose upstream said, at its
        // latest sign-in, that this email is verified (never a stale account field)
        const match = await tx.federatedIdentity.findFirst({
          where: { email, emailVerified: true, provider: { not: profile.provider } },
          orderBy: { createdAt: 'asc' },
          select: { accountId: true },
        });
        if (match) {
          await tx.federatedIdentity.create({ data: { provider: profile.provider, subject: profile.subject, accountId: match.accountId, ...identityData } });
          const account = await tx.account.update({ where: { id: match.accountId }, data: claimsFrom(profile), select });
          return { account, created: false, linked: true };
        }
      }
      const account = await tx.account.create({
        data: {
          id: newAccountId(),
          ...claimsFrom(profile),
          identities: { create: { provider: profile.provider, subject: profile.subject, ...identityData } },
        },
        select,
      });
      return { account, created: true, linked: false };
    });
  try {
    return await attempt();
  } catch (err) {
    // Two first sign-ins of one identity raced; the other created it, so find it.
    if ((err as { code?: string }).code === 'P2002') return attempt();
    throw err;
  }
}

export function listIdentities(db: Pick<Db, 'federatedIdentity'>, accountId: string) {
  return db.federatedIdentity.findMany({ where: { accountId }, select: { provider: true, subject: true, email: true, emailVerified: true } });
}
