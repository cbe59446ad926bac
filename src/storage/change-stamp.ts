import type { Db } from './database.js';

type Tx = Pick<Db, 'changeStamp'>;

/** Every admin write calls this in its transaction; servers poll `readChangeStamp`. */
export function bumpChangeStamp(db: Tx) {
  return db.changeStamp.upsert({
    where: { id: 1 },
    create: { id: 1, version: 1 },
    update: { version: { increment: 1 } },
  });
}

export async function readChangeStamp(db: Tx): Promise<number> {
  const row = await db.changeStamp.findUnique({ where: { id: 1 }, select: { version: true } });
  return row?.version ?? 0;
}
