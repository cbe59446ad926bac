import { listSigningKeys, rotateSigningKeys, type KeyInfo } from '../oidc/keys.js';
import { output, parse, serverConfig, usageError, withDatabase } from './context.js';

export const KEYS_HELP = `Usage: gatehouse keys <command> [--json]

Commands:
  list     list signing keys (never their private parts)
  rotate   make new current keys (ES256, RS256); the old ones stay in /jwks as
           "previous" so tokens they signed still verify. Restart the servers to
           sign with the new keys. New keys are encrypted when KEY_ENCRYPTION_KEY is set.
`;

const describeKey = (k: KeyInfo) => `${k.kid}  ${k.alg}  ${k.state}${k.encrypted ? '  encrypted' : ''}  ${k.createdAt.toISOString()}`;

export async function keysCommand(args: string[]): Promise<void> {
  const [sub, ...rest] = args;
  if (sub !== 'list' && sub !== 'rotate') {
    if (sub === undefined || sub === '--help' || sub === '-h' || sub === 'help') return void process.stdout.write(KEYS_HELP);
    throw usageError(`unknown command: keys ${sub} (see gatehouse keys --help)`);
  }
  const { values, positionals } = parse(rest, {});
  if (values.help) return void process.stdout.write(KEYS_HELP);
  if (positionals.length) throw usageError(`unexpected argument: ${positionals[0]}`);
  await withDatabase(async ({ prisma: db }) => {
    const out = output(Boolean(values.json));
    if (sub === 'list') {
      const keys = await listSigningKeys(db);
      out.print(keys, () => keys.map(describeKey).join('\n') || 'no keys yet (the server makes them on first start)');
      return;
    }
    const keys = await rotateSigningKeys(db, serverConfig().keyEncryptionKey);
    out.print(keys, () => `rotated: restart the servers to sign with the new keys\n${keys.map(describeKey).join('\n')}`);
  });
}
