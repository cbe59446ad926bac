import { createServer, type Server } from 'node:http';
import { createRemoteJWKSet, jwtVerify } from 'jose';

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
