import { errors, type Adapter, type AdapterPayload } from 'oidc-provider';
import type { Db } from '../storage/database.js';
import type { Catalog } from '../storage/catalog.js';
import { DISPLAY_METADATA, pick, toClientMetadata } from './client-metadata.js';
import { createClient, deleteClient, findClient, updateClient } from '../storage/clients.js';
import { clientInput, formatIssues } from '../storage/validation.js';
import { hashSecret, isArgon2idHash } from './client-secrets.js';

/**
 * oidc-provider storage on Prisma: one `OidcPayload` row per artifact, keyed by
 * (type, id). Every lookup filters by the model type.
 * @see https://github.com/panva/node-oidc-provider/blob/main/example/my_adapter.js
 */
export class PrismaAdapter implements Adapter {
  constructor(
    private readonly db: Db,
    private readonly type: string,
    private readonly now: () => number = Date.now,
  ) {}

  async upsert(id: string, payload: AdapterPayload, expiresIn: number): Promise<void> {
    const data = {
      payload: payload as object,
      grantId: payload.grantId ?? null,
      userCode: payload.userCode ?? null,
      uid: payload.uid ?? null,
      // expiresIn is in seconds
      expiresAt: expiresIn ? new Date(this.now() + expiresIn * 1000) : null,
    };
    await this.db.oidcPayload.upsert({
      where: { type_id: { type: this.type, id } },
      create: { id, type: this.type, ...data },
      update: data,
    });
  }

  async find(id: string): Promise<AdapterPayload | undefined> {
    return this.#toPayload(await this.db.oidcPayload.findUnique({ where: { type_id: { type: this.type, id } } }));
  }

  async findByUid(uid: string): Promise<AdapterPayload | undefined> {
    return this.#toPayload(await this.db.oidcPayload.findFirst({ where: { type: this.type, uid } }));
  }

  async findByUserCode(userCode: string): Promise<AdapterPayload | undefined> {
    return this.#toPayload(await this.db.oidcPayload.findFirst({ where: { type: this.type, userCode } }));
  }

  async destroy(id: string): Promise<void> {
    await this.db.oidcPayload.deleteMany({ where: { type: this.type, id } });
  }

  async revokeByGrantId(grantId: string): Promise<void> {
    await this.db.oidcPayload.deleteMany({ where: { type: this.type, grantId } });
  }

  /**
   * Marks the artifact consumed. Atomic: the conditional update succeeds for
   * exactly one of any number of racing calls; the others get invalid_grant.
   */
  async consume(id: string): Promise<void> {
    const { count } = await this.db.oidcPayload.updateMany({
      where: { type: this.type, id, consumedAt: null },
      data: { consumedAt: new Date(this.now()) },
    });
    if (count !== 1) throw new errors.InvalidGrant('grant request is invalid');
  }

  #toPayload(
    row: { payload: unknown; expiresAt: Date | null; consumedAt: Date | null } | null,
  ): AdapterPayload | undefined {
    if (!row) return undefined;
    if (row.expiresAt && row.expiresAt.getTime() <= this.now()) return undefined;
    const payload = row.payload as AdapterPayload;
    // consumed is seconds since the epoch
    return row.consumedAt ? { ...payload, consumed: Math.floor(row.consumedAt.getTime() / 1000) } : payload;
  }
}

/**
 * Clients live in their own table. Admins manage them with the CLI; through
 * oidc-provider only dynamic registration (RFC 7591/7592) writes, and only to
 * clients it registered. Registered clients are always third-party, get no API
 * access until an admin grants it, and follow the same rules as the CLI's.
 */
export class ClientAdapter implements Adapter {
  constructor(
    private readonly db: Db,
    private readonly catalog: Catalog,
  ) {}

  async find(id: string): Promise<AdapterPayload | undefined> {
    const client = await this.catalog.client(id);
    return client ? (toClientMetadata(client) as AdapterPayload) : undefined;
  }

  async upsert(id: string, payload: AdapterPayload): Promise<void> {
    const m = payload as Record<string, unknown>;
    const existing = await findClient(this.db, id);
    if (existing && !existing.dynamic) throw new errors.InvalidClientMetadata('this client is managed by an administrator');
    const authMethod = (m.token_endpoint_auth_method as string | undefined) ?? 'client_secret_basic';
    const parsed = clientInput.safeParse({
      clientId: id,
      name: (m.client_name as string | undefined) ?? id,
      grantTypes: m.grant_types ?? ['authorization_code'],
      redirectUris: m.redirect_uris ?? [],
      tokenEndpointAuthMethod: authMethod,
      postLogoutRedirectUris: m.post_logout_redirect_uris ?? [],
      backchannelLogoutUri: m.backchannel_logout_uri ?? null,
      requirePar: m.require_pushed_authorization_requests === true,
      // third-party, and no API access, until an admin says otherwise
      firstParty: existing?.firstParty ?? false,
      resources: existing?.resources ?? [],
      scopes: existing?.scopes ?? [],
    });
    if (!parsed.success) {
      const redirect = parsed.error.issues.find((i) => i.path[0] === 'redirectUris');
      if (redirect) {
        const err = new errors.InvalidRedirectUri();
        err.error_description = redirect.message;
        throw err;
      }
      throw new errors.InvalidClientMetadata(formatIssues(parsed.error).join('; '));
    }
    const secret = typeof m.client_secret === 'string' && authMethod !== 'none' ? m.client_secret : null;
    // oidc-provider hands back the stored hash on updates; a new secret is hashed here
    const secretHash = secret === null ? null : isArgon2idHash(secret) ? secret : await hashSecret(secret);
    const { clientId, ...fields } = parsed.data;
    const metadata = pick(m, DISPLAY_METADATA) as Record<string, string | string[]>;
    const data = { ...fields, clientId: id, secretHash, dynamic: true, metadata };
    if (existing) await updateClient(this.db, id, data);
    else await createClient(this.db, data);
    this.catalog.clear();
  }

  async destroy(id: string): Promise<void> {
    const existing = await findClient(this.db, id);
    if (!existing?.dynamic) throw new errors.InvalidRequest('this client is managed by an administrator');
    await deleteClient(this.db, id);
    this.catalog.clear();
  }

  async consume(): Promise<void> {}
  async findByUid(): Promise<undefined> {
    return undefined;
  }
  async findByUserCode(): Promise<undefined> {
    return undefined;
  }
  async revokeByGrantId(): Promise<void> {}
}

/** The `adapter` option of oidc-provider: a factory called once per model name. */
export function adapterFactory(db: Db, catalog: Catalog, now?: () => number) {
  return function adapter(name: string): Adapter {
    return name === 'Client' ? new ClientAdapter(db, catalog) : new PrismaAdapter(db, name, now);
  };
}
