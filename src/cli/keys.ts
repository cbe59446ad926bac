import { listSigningKeys, rotateSigningKeys, type KeyInfo } from '../services/keys.js';
import { SIGNING_ALGS } from '../common/protocol.js';
import { serverConfig, withDatabase } from './context.js';
import type { Command } from './command.js';

const describeKey = (k: KeyInfo) => `${k.kid}  ${k.alg}  ${k.state}${k.encrypted ? '  encrypted' : ''}  ${k.createdAt.toISOString()}`;

export const keysCommand: Command = {
  name: 'keys',
  summary: 'signing keys',
  subcommands: [
    {
      usage: 'list',
      summary: 'list signing keys (never their private parts)',
      async run({ out }) {
        await withDatabase(async ({ prisma: db }) => {
          const keys = await listSigningKeys(db);
          out.print(keys, () => keys.map(describeKey).join('\n') || 'no keys yet (the server makes them on first start)');
        });
      },
    },
    {
      usage: 'rotate',
      summary: `make new current keys (${SIGNING_ALGS.join(', ')}); the old ones stay in /jwks as "previous" so tokens they signed still verify. Restart the servers to sign with the new keys. New keys are encrypted when KEY_ENCRYPTION_KEY is set.`,
      async run({ out }) {
        const kek = serverConfig().keyEncryptionKey;
        await withDatabase(async ({ prisma: db }) => {
          const keys = await rotateSigningKeys(db, kek);
          out.print(keys, () => `rotated: restart the servers to sign with the new keys\n${keys.map(describeKey).join('\n')}`);
        });
      },
    },
  ],
};
