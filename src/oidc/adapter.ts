import { errors, type Adapter, type AdapterPayload } from 'oidc-provider';
import type { Db } from '../storage/database.js';
import { PayloadStore, type StoredPayload } from '../storage/oidc-payloads.js';
import type { HotStatements } from '../storage/hot-statements.js';
import type { AdminDataCache } from '../services/admin-data-cache.js';
import { saveRegisteredClient, deleteClient, usesSecret } from '../services/clients.js';
import type { AuthMethod } from '../common/protocol.js';
import { ServiceError } from '../services/errors.js';
import { hashSecret, isArgon2idHash } from '../services/client-secrets.js';
import { REGISTERED_METADATA, pick, toClientMetadata } from './client-metadata.js';
import { UnstorableTextError } from '../storage/text.js';

/**
 * oidc-provider storage: one `OidcPayload` row per artifact, keyed by
 * (type, id), through the payload store (storage/oidc-payloads.ts) on the hot
 * statements, not Prisma.
 * @see https://github.com/panva/node-oidc-provider/blob/main/example/my_adapter.js
 */
export class PayloadAdapter implements Adapter {
  constructor(
    /** shared by the models of one provider, so parallel lookups become one query */
    private readonly store: PayloadStore,
    private readonly type: string,
    private readonly now: () => number = Date.now,
  ) {}

  async upsert(id: string, payload: AdapterPayload, expiresIn: number): Promise<void> {
    // expiresIn is in seconds
    const expiresAt = expiresIn ? new Date(this.now() + expiresIn * 1000) : null;
    try {
      await this.store.save(this.type, id, payload as Record<string, unknown>, expiresAt);
    } catch (err) {
      // a parameter the request carried (state, nonce, login_hint, …) that no database can store
      if (err instanceof UnstorableTextError) throw new errors.InvalidRequest('a parameter contains a NUL character or a lone UTF-16 surrogate');
      throw err;
    }
  }

  async find(id: string): Promise<AdapterPayload | undefined> {
    return this.#toPayload(await this.store.find(this.type, id));
  }

  async findByUid(uid: string): Promise<AdapterPayload | undefined> {
    return this.#toPayload(await this.store.findBy(this.type, { uid }));
  }

  async findByUserCode(userCode: string): Promise<AdapterPayload | undefined> {
    return this.#toPayload(await this.store.findBy(this.type, { userCode }));
  }

  async destroy(id: string): Promise<void> {
    await this.store.delete(this.type, id);
  }

  async revokeByGrantId(grantId: string): Promise<void> {
    await this.store.deleteOfGrant(this.type, grantId);
  }

  /** Atomic: exactly one of any number of racing calls succeeds; the others get invalid_grant. */
  async consume(id: string): Promise<void> {
    if (!(await this.store.consume(this.type, id, new Date(this.now())))) {
      throw new errors.InvalidGrant('grant request is invalid');
    }
  }

  #toPayload(row: StoredPayload | null): AdapterPayload | undefined {
    if (!row) return undefined;
    if (row.expiresAt && row.expiresAt.getTime() <= this.now()) return undefined;
    const payload = row.payload as AdapterPayload;
    // consumed is seconds since the epoch, to the millisecond: oidc-provider only tests it,
    // and the refresh grace measures its period from it (whole seconds would cut it short)
    return row.consumedAt ? { ...payload, consumed: row.consumedAt.getTime() / 1000 } : payload;
  }
}

/** A refusal from the clients service, as the registration error oidc-provider answers with. */
function registrationError(err: ServiceError): Error {
  const redirect = err.problems.find((p) => p.path[0] === 'redirectUris');
  if (redirect) {
    const e = new errors.InvalidRedirectUri();
    e.error_description = redirect.message;
    return e;
  }
  return new errors.InvalidClientMetadata(err.message);
}

/**
 * Clients live in their own table and are read through the admin-data cache.
 * Through oidc-provider only dynamic registration (RFC 7591/7592) writes, and
 * only to clients it registered, under the clients service's rules.
 */
export class ClientAdapter implements Adapter {
  constructor(
    private readonly db: Db,
    private readonly cache: AdminDataCache,
  ) {}

  async find(id: string): Promise<AdapterPayload | undefined> {
    const client = await this.cache.client(id);
    return client ? (toClientMetadata(client) as AdapterPayload) : undefined;
  }

  async upsert(id: string, payload: AdapterPayload): Promise<void> {
    const m = payload as Record<string, unknown>;
    const authMethod = (m.token_endpoint_auth_method as string | undefined) ?? 'client_secret_basic';
    const fields = {
      name: (m.client_name as string | undefined) ?? id,
      grantTypes: m.grant_types ?? ['authorization_code'],
      redirectUris: m.redirect_uris ?? [],
      tokenEndpointAuthMethod: authMethod,
      jwks: m.jwks ?? null,
      jwksUri: m.jwks_uri ?? null,
      postLogoutRedirectUris: m.post_logout_redirect_uris ?? [],
      backchannelLogoutUri: m.backchannel_logout_uri ?? null,
      requirePar: m.require_pushed_authorization_requests === true,
    };
    const secret = typeof m.client_secret === 'string' && usesSecret({ tokenEndpointAuthMethod: authMethod as AuthMethod }) ? m.client_secret : null;
    try {
      // oidc-provider hands back the stored hash on updates; a new secret is hashed here
      const secretHash = secret === null || isArgon2idHash(secret) ? secret : await hashSecret(secret);
      await saveRegisteredClient(this.db, id, fields, secretHash, pick(m, REGISTERED_METADATA));
    } catch (err) {
      if (err instanceof UnstorableTextError) throw new errors.InvalidClientMetadata(err.message);
      throw err instanceof ServiceError ? registrationError(err) : err;
    }
    this.cache.clear();
  }

  async destroy(id: string): Promise<void> {
    try {
      await deleteClient(this.db, id, { dynamic: true });
    } catch (err) {
      throw err instanceof ServiceError ? new errors.InvalidRequest('this client is managed by an administrator') : err;
    }
    this.cache.clear();
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
export function adapterFactory(db: Db, hot: HotStatements, cache: AdminDataCache, now?: () => number, pepper?: Buffer) {
  const store = new PayloadStore(hot, pepper);
  return function adapter(name: string): Adapter {
    return name === 'Client' ? new ClientAdapter(db, cache) : new PayloadAdapter(store, name, now);
  };
}
