import type { UpstreamConfig } from '../config.js';
import { gitHub } from './github.js';
import { openIdConnect } from './oidc.js';
import type { Upstream } from './upstream.js';

export type { Reauthentication, Upstream, UpstreamProfile } from './upstream.js';
export { UpstreamError } from './upstream.js';

/** One Upstream per configured provider, keyed by id, in configuration order. */
export function createUpstreams(configs: UpstreamConfig[]): Map<string, Upstream> {
  return new Map(
    configs.map((c) => [c.id, c.kind === 'github' ? gitHub(c) : openIdConnect(c)] as const),
  );
}
