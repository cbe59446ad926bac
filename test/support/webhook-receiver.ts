import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

/**
 * A webhook receiver for tests, verifying Standard Webhooks signatures on its
 * own (https://github.com/standard-webhooks/standard-webhooks, spec/standard-webhooks.md),
 * independent of Gatehouse's code.
 */

/** How far a webhook-timestamp may be from now, in seconds (the spec's suggested tolerance). */
const TOLERANCE = 5 * 60;

/**
 * Verifies one message: the signed content is "<webhook-id>.<webhook-timestamp>.<body>",
 * the key is the base64 after "whsec_", the header a space-separated list of
 * "v1,<base64 HMAC-SHA256>"; one matching v1 signature suffices.
 */
export function verifyStandardWebhook(secret: string, headers: Record<string, string | undefined>, body: string, nowSeconds = Math.floor(Date.now() / 1000)): boolean {
  const id = headers['webhook-id'];
  const timestamp = headers['webhook-timestamp'];
  const signatures = headers['webhook-signature'];
  if (!id || !timestamp || !signatures || !secret.startsWith('whsec_')) return false;
  if (!/^\d+$/.test(timestamp) || Math.abs(nowSeconds - Number(timestamp)) > TOLERANCE) return false;
  const expected = createHmac('sha256', Buffer.from(secret.slice('whsec_'.length), 'base64')).update(`${id}.${timestamp}.${body}`).digest();
  return signatures.split(' ').some((entry) => {
    const [version, signature] = entry.split(',', 2);
    if (version !== 'v1' || !signature) return false;
    const given = Buffer.from(signature, 'base64');
    return given.length === expected.length && timingSafeEqual(given, expected);
  });
}

export interface ReceivedMessage {
  id: string;
  timestamp: string;
  headers: Record<string, string | undefined>;
  body: string;
  /** the body, parsed */
  payload: { type: string; timestamp: string; data: Record<string, any> };
  valid: boolean;
  /** the status answered; undefined while held (or when the sender went away first) */
  answered?: number;
  /** ms since the epoch: when the request arrived, and when its exchange ended (answered, or the sender hung up) */
  receivedAt: number;
  closedAt?: number;
}

/**
 * 'ok': 204 to valid messages; 'unavailable': 503 to all; 'busy': 429 to all;
 * 'gone': 410 to all; 'hold': never answers.
 */
export type ReceiverMode = 'ok' | 'unavailable' | 'busy' | 'gone' | 'hold';

const STATUS: Record<Exclude<ReceiverMode, 'ok' | 'hold'>, number> = { unavailable: 503, busy: 429, gone: 410 };

export class WebhookReceiver {
  mode: ReceiverMode = 'ok';
  /** sent as Retry-After with the 503 and 429 answers, when set */
  retryAfter: string | undefined;
  secret = '';
  readonly messages: ReceivedMessage[] = [];
  #server: Server | undefined;
  readonly #sockets = new Set<Socket>();
  port = 0;

  /** Listens on 127.0.0.1 (on `port` again after a close); the port. */
  async listen(port = this.port): Promise<number> {
    const server = createServer((req, res) => void this.#handle(req, res));
    server.on('connection', (socket) => {
      this.#sockets.add(socket);
      socket.on('close', () => this.#sockets.delete(socket));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
    this.#server = server;
    this.port = (server.address() as { port: number }).port;
    return this.port;
  }

  /** Stops listening and drops every connection (held requests included): the port refuses connections. */
  async close(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    if (!server) return;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const socket of this.#sockets) socket.destroy();
    await closed;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}/hook`;
  }

  /** The messages answered with a 2xx. */
  acknowledged(): ReceivedMessage[] {
    return this.messages.filter((m) => m.answered !== undefined && m.answered >= 200 && m.answered < 300);
  }

  /** Messages whose event (data.targetId) is `target`. */
  about(target: string): ReceivedMessage[] {
    return this.messages.filter((m) => m.payload.data?.targetId === target);
  }

  /** Whether two requests with the same webhook-id were ever open at once (ids of those). */
  overlapping(): string[] {
    const ids = new Set<string>();
    for (const [i, a] of this.messages.entries()) {
      for (const b of this.messages.slice(i + 1)) {
        if (a.id === b.id && b.receivedAt < (a.closedAt ?? Infinity) && a.receivedAt < (b.closedAt ?? Infinity)) ids.add(a.id);
      }
    }
    return [...ids];
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const receivedAt = Date.now();
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks).toString('utf8');
    const headers = Object.fromEntries(['webhook-id', 'webhook-timestamp', 'webhook-signature', 'content-type'].map((h) => [h, req.headers[h] as string | undefined]));
    let payload: ReceivedMessage['payload'];
    try {
      payload = JSON.parse(body);
    } catch {
      payload = { type: '', timestamp: '', data: {} };
    }
    const message: ReceivedMessage = {
      id: headers['webhook-id'] ?? '', timestamp: headers['webhook-timestamp'] ?? '', headers, body, payload,
      valid: req.method === 'POST' && verifyStandardWebhook(this.secret, headers, body), receivedAt,
    };
    this.messages.push(message);
    res.on('close', () => (message.closedAt = Date.now()));
    if (this.mode === 'hold') return;
    const status = this.mode === 'ok' ? (message.valid ? 204 : 401) : STATUS[this.mode];
    if ((status === 503 || status === 429) && this.retryAfter !== undefined) res.setHeader('retry-after', this.retryAfter);
    res.writeHead(status).end(() => (message.answered = status));
  }
}
