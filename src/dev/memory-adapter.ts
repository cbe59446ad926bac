import type { Adapter, AdapterPayload } from 'oidc-provider';

/**
 * Sessions, codes and tokens in memory, one store per call: a restart forgets them,
 * which for a development or test upstream only means signing in again. The
 * development upstream and the tests' OIDC stand-in share it. (oidc-provider's own memory adapter would do the same,
 * with a start-up warning meant for production servers.)
 */
export function memoryAdapter() {
  const store = new Map<string, { payload: AdapterPayload; expiresAt?: number }>();
  const live = (key: string) => {
    const entry = store.get(key);
    if (entry?.expiresAt !== undefined && entry.expiresAt < Date.now()) store.delete(key);
    else if (entry) return structuredClone(entry.payload);
    return undefined;
  };
  const findBy = (model: string, field: 'uid' | 'userCode', value: string) => {
    for (const [key, { payload }] of store) if (key.startsWith(`${model}:`) && payload[field] === value) return live(key);
    return undefined;
  };
  return class implements Adapter {
    constructor(readonly model: string) {}
    async upsert(id: string, payload: AdapterPayload, expiresIn?: number) {
      store.set(`${this.model}:${id}`, { payload: structuredClone(payload), expiresAt: expiresIn ? Date.now() + expiresIn * 1000 : undefined });
    }
    async find(id: string) { return live(`${this.model}:${id}`); }
    async findByUid(uid: string) { return findBy(this.model, 'uid', uid); }
    async findByUserCode(userCode: string) { return findBy(this.model, 'userCode', userCode); }
    async consume(id: string) {
      const entry = store.get(`${this.model}:${id}`);
      if (entry) entry.payload.consumed = Math.floor(Date.now() / 1000);
    }
    async destroy(id: string) { store.delete(`${this.model}:${id}`); }
    async revokeByGrantId(grantId: string) {
      for (const [key, { payload }] of store) if (payload.grantId === grantId) store.delete(key);
    }
  };
}
