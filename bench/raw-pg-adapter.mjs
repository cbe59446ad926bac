// Setup (p)'s storage: the plain PostgreSQL adapter a team would write for oidc-provider itself, in
// the shape of panva's example adapters: one table with a JSONB payload, one query per find, upsert,
// consume, destroy and revoke; unnamed queries (no prepared statements beyond what `pg` does), no
// batching, no cache, a pg.Pool of its default size.
import pg from 'pg';

const TABLE = 'oidc_models';

/** Creates the table and its indexes (idempotent); the adapter class for oidc-provider's `adapter` option. */
export async function plainPostgresAdapter(connectionString) {
  const pool = new pg.Pool({ connectionString });
  await pool.query(`CREATE TABLE IF NOT EXISTS ${TABLE} (
    id text NOT NULL, type text NOT NULL, payload jsonb NOT NULL, grant_id text, user_code text, uid text,
    expires_at timestamptz, consumed_at timestamptz, PRIMARY KEY (id, type))`);
  await pool.query(`CREATE INDEX IF NOT EXISTS ${TABLE}_grant_id ON ${TABLE} (grant_id)`);
  await pool.query(`CREATE INDEX IF NOT EXISTS ${TABLE}_uid ON ${TABLE} (uid)`);
  await pool.query(`CREATE INDEX IF NOT EXISTS ${TABLE}_user_code ON ${TABLE} (user_code)`);

  const live = (row) => {
    if (!row || (row.expires_at && row.expires_at <= new Date())) return undefined;
    return { ...row.payload, ...(row.consumed_at && { consumed: Math.floor(row.consumed_at.getTime() / 1000) }) };
  };
  return class PlainPostgresAdapter {
    constructor(type) { this.type = type; }
    async upsert(id, payload, expiresIn) {
      await pool.query(`INSERT INTO ${TABLE} (id, type, payload, grant_id, user_code, uid, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)
        ON CONFLICT (id, type) DO UPDATE SET payload = excluded.payload, grant_id = excluded.grant_id, user_code = excluded.user_code,
        uid = excluded.uid, expires_at = excluded.expires_at`,
      [id, this.type, payload, payload.grantId ?? null, payload.userCode ?? null, payload.uid ?? null, expiresIn ? new Date(Date.now() + expiresIn * 1000) : null]);
    }
    async find(id) {
      return live((await pool.query(`SELECT payload, expires_at, consumed_at FROM ${TABLE} WHERE id = $1 AND type = $2`, [id, this.type])).rows[0]);
    }
    async findByUid(uid) {
      return live((await pool.query(`SELECT payload, expires_at, consumed_at FROM ${TABLE} WHERE uid = $1 AND type = $2`, [uid, this.type])).rows[0]);
    }
    async findByUserCode(userCode) {
      return live((await pool.query(`SELECT payload, expires_at, consumed_at FROM ${TABLE} WHERE user_code = $1 AND type = $2`, [userCode, this.type])).rows[0]);
    }
    async consume(id) {
      await pool.query(`UPDATE ${TABLE} SET consumed_at = now() WHERE id = $1 AND type = $2`, [id, this.type]);
    }
    async destroy(id) {
      await pool.query(`DELETE FROM ${TABLE} WHERE id = $1 AND type = $2`, [id, this.type]);
    }
    async revokeByGrantId(grantId) {
      await pool.query(`DELETE FROM ${TABLE} WHERE grant_id = $1`, [grantId]);
    }
  };
}
