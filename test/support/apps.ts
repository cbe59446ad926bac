import { spawn } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import { ROOT, freePort } from './processes.js';

/** A relying party's redirect endpoints: records every request it receives. */
export interface AppServer {
  url: string;
  /** full URLs of GET requests received, newest last */
  hits: URL[];
  /** bodies of POST requests (back-channel logout) */
  posts: { path: string; body: string }[];
  waitFor(path: string, after?: number): Promise<URL>;
  close(): Promise<void>;
}

function listen(server: Server): Promise<number> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port)));
}

export async function startApp(): Promise<AppServer> {
  const hits: URL[] = [];
  const posts: { path: string; body: string }[] = [];
  let url = '';
  const server = createServer((req, res) => {
    const full = new URL(req.url!, url);
    if (req.method === 'POST') {
      let body = '';
      req.on('data', (d) => (body += d));
      req.on('end', () => {
        posts.push({ path: full.pathname, body });
        res.writeHead(200).end();
      });
      return;
    }
    hits.push(full);
    res.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><title>app</title><p id="done">back in the app</p>');
  });
  url = `http://127.0.0.1:${await listen(server)}`;
  return {
    url,
    hits,
    posts,
    async waitFor(path, after = 0) {
      const deadline = Date.now() + 15_000;
      for (;;) {
        const hit = hits.slice(after).find((h) => h.pathname === path);
        if (hit) return hit;
        if (Date.now() > deadline) throw new Error(`the app never received ${path}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    close: () => new Promise((r) => server.close(() => r())),
  };
}

/** An API (resource server) that accepts only Gatehouse JWTs for its audience. */
export async function startApi(issuer: string, audience: string): Promise<{ url: string; close(): Promise<void> }> {
  const jwks = createRemoteJWKSet(new URL(`${issuer}/jwks`));
  const server = createServer(async (req, res) => {
    const token = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    try {
      if (!token) throw new Error('no token');
      const { payload } = await jwtVerify(token, jwks, { issuer, audience, typ: 'at+jwt' });
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ sub: payload.sub, scope: payload.scope }));
    } catch {
      res.writeHead(401, { 'www-authenticate': 'Bearer error="invalid_token"' }).end();
    }
  });
  const url = `http://127.0.0.1:${await listen(server)}`;
  return { url, close: () => new Promise((r) => server.close(() => r())) };
}

export interface McpApi {
  /** the API's identifier and the URL clients call: http://127.0.0.1:<port>/mcp */
  resource: string;
  /** http://127.0.0.1:<port> */
  origin: string;
  /** everything the process wrote */
  output(): string;
  close(): Promise<void>;
}

/**
 * Starts examples/mcp-api/server.mjs (node, through the package export
 * gatehouse/resource, so after `npm run build`) for `issuer`, and waits until it listens.
 */
export async function startMcpApi(issuer: string): Promise<McpApi> {
  const port = await freePort();
  const origin = `http://127.0.0.1:${port}`;
  const resource = `${origin}/mcp`;
  const child = spawn(process.execPath, [join(ROOT, 'examples', 'mcp-api', 'server.mjs')], {
    env: { PATH: process.env.PATH, ISSUER: issuer, RESOURCE: resource, PORT: String(port), HOST: '127.0.0.1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  const deadline = Date.now() + 10_000;
  while (!out.includes('MCP API on')) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`examples/mcp-api did not start:\n${out}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    resource,
    origin,
    output: () => out,
    async close() {
      if (child.exitCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}
