import type { describeSigningKeys } from '../services/keys.js';
import { SIGNING_ALGS } from '../common/protocol.js';
import { serverConfig, withDatabase } from './context.js';
import type { Command } from './command.js';

/** The rules, loaded when a subcommand runs (not for --help). */
const service = () => import('../services/keys.js');

type Described = Awaited<ReturnType<typeof describeSigningKeys>>[number];

const when = (d: Date | null) => (d ? d.toISOString() : '-');
const UNTIL: Record<Described['stage'], string> = { published: 'signs from', signing: 'until', retired: 'in /jwks until' };

const describeKey = (k: Described) =>
  `${k.kid}  ${k.alg}  ${k.stage}${k.until ? ` (${UNTIL[k.stage]} ${when(k.until)})` : ''}${k.encrypted ? '  encrypted' : ''}  published ${when(k.publishedAt)}`;

export const keysCommand: Command = {
  name: 'keys',
  summary: 'signing keys',
  intro: `Each key is published in /jwks, then signs, then is retired (still published until
every token it signed has expired). Running servers follow changes within
CHANGE_POLL_MS, with no restart.`,
  subcommands: [
    {
      usage: 'list',
      summary: 'list signing keys with their stage and dates (never their private parts)',
      async run({ out }) {
        const { describeSigningKeys } = await service();
        await withDatabase(async ({ prisma: db }) => {
          const keys = await describeSigningKeys(db);
          out.print(keys, () => keys.map(describeKey).join('\n') || 'no keys yet (the server makes them on first start)');
        });
      },
    },
    {
      usage: 'rotate',
      summary: `rotate every algorithm (${SIGNING_ALGS.join(', ')}): the published next key signs once it has been in /jwks for KEY_PUBLISH_LEAD, and a new next key is published. Needs the KEY_ENCRYPTION_KEY of the stored keys; new keys are encrypted when it is set.`,
      async run({ out }) {
        const config = await serverConfig();
        const { describeSigningKeys, rotateSigningKeys } = await service();
        await withDatabase(async ({ prisma: db }) => {
          await rotateSigningKeys(db, config.keyEncryptionKey, { publishLeadSeconds: config.keyPublishLeadSeconds });
          const keys = await describeSigningKeys(db);
          out.print(keys, () => `rotated: running servers switch at the times below, with no restart\n${keys.map(describeKey).join('\n')}`);
        });
      },
    },
  ],
};
