import { errors, type Adapter, type AdapterPayload } from 'oidc-provider';
import type { Db } from '../storage/database.js';
import type { Catalog } from '../storage/catalog.js';
import { toClientMetadata } from './client-metadata.js';

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
 * Clients live in their own table, managed by the admin CLI; through oidc-provider
 * they are read-only.
 */
export class ClientAdapter implements Adapter {
  constructor(private readonly catalog: Catalog) {}

  async find(id: string): Promise<AdapterPayload | undefined> {
    const client = await this.catalog.client(id);
    return client ? (toClientMetadata(client) as AdapterPayload) : undefined;
  }

  async upsert(): Promise<void> {
    throw new Error('clients are managed with the gatehouse CLI');
  }

  async destroy(): Promise<void> {
    throw new Error('clients are managed with the gatehouse CLI');
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
    return name === 'Client' ? new ClientAdapter(catalog) : new PrismaAdapter(db, name, now);
  };
}
