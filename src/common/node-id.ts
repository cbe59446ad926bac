import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';

/** This process, as leases and logs name it: host, pid and a random suffix (pids are reused). */
export const NODE_ID = `${hostname()}/${process.pid}/${randomBytes(3).toString('hex')}`;
