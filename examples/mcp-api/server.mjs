// An MCP-style API protected by Gatehouse. A client that knows only
// http://localhost:4100/mcp finds everything else on its own (see README.md):
// - POST /mcp without a token: 401 with
//   WWW-Authenticate: Bearer realm="…", resource_metadata="http://localhost:4100/.well-known/oauth-protected-resource/mcp"
// - GET /.well-known/oauth-protected-resource/mcp (and /.well-known/oauth-protected-resource):
//   the RFC 9728 document naming Gatehouse as the authorization server
// - POST /mcp with a token for this API (aud = RESOURCE, scope mcp:tools): JSON-RPC 2.0,
//   `initialize`, `tools/list` and `tools/call` of one tool, `whoami`
//
// This speaks the JSON-RPC part of MCP's Streamable HTTP transport in plain JSON
// (no SSE stream, no sessions): enough to show the authorization, not an MCP SDK.
// `gatehouse/resource` resolves through package.json "exports"; run `npm run build` first.
import Koa from 'koa';
import Router from '@koa/router';
import { protectedResourceMetadata, requireToken } from 'gatehouse/resource';

const port = Number(process.env.PORT ?? 4100);
const issuer = process.env.ISSUER ?? 'http://localhost:3000';
// The API's identifier: its public URL, registered in Gatehouse with
// `gatehouse resources create --identifier <RESOURCE> --scope mcp:tools --allow-registered-clients`.
const resource = process.env.RESOURCE ?? `http://localhost:${port}/mcp`;
const SCOPE = 'mcp:tools';
const PROTOCOL_VERSION = '2025-06-18';
/** request bodies above this are refused (bytes) */
const MAX_BODY = 64 * 1024;

const TOOLS = [
  {
    name: 'whoami',
    description: 'Says who the access token was issued to: the person (sub), the client and the scopes.',
    inputSchema: { type: 'object', properties: {}, additionalProperties: false },
  },
];

/** JSON-RPC 2.0 answers. */
const result = (id, value) => ({ jsonrpc: '2.0', id, result: value });
const failure = (id, code, message) => ({ jsonrpc: '2.0', id, error: { code, message } });

async function readJson(ctx) {
  let size = 0;
  const chunks = [];
  for await (const chunk of ctx.req) {
    size += chunk.length;
    if (size > MAX_BODY) ctx.throw(413, 'request body too large');
    chunks.push(chunk);
  }
  return JSON.parse(Buffer.concat(chunks).toString('utf8'));
}

/** One JSON-RPC call, for the token in ctx.state.auth. */
function call(message, auth) {
  const { id, method, params } = message;
  switch (method) {
    case 'initialize':
      return result(id, { protocolVersion: PROTOCOL_VERSION, capabilities: { tools: {} }, serverInfo: { name: 'gatehouse-mcp-example', version: '1.0.0' } });
    case 'ping':
      return result(id, {});
    case 'tools/list':
      return result(id, { tools: TOOLS });
    case 'tools/call': {
      if (params?.name !== 'whoami') return failure(id, -32602, `unknown tool: ${String(params?.name)}`);
      const who = { sub: auth.subject, client_id: auth.clientId, scope: auth.scopes.join(' ') };
      return result(id, { content: [{ type: 'text', text: JSON.stringify(who) }], structuredContent: who, isError: false });
    }
    default:
      return failure(id, -32601, `method not found: ${String(method)}`);
  }
}

const router = new Router();
router.all('/mcp', requireToken({ issuer, audience: resource, scopes: [SCOPE] }), async (ctx) => {
  if (ctx.method !== 'POST') {
    // no server-sent event stream here (MCP allows a 405 for GET)
    ctx.status = 405;
    ctx.set('Allow', 'POST');
    return;
  }
  let message;
  try {
    message = await readJson(ctx);
  } catch (err) {
    if (err.status === 413) throw err;
    ctx.body = failure(null, -32700, 'parse error');
    return;
  }
  if (typeof message !== 'object' || message === null || Array.isArray(message) || message.jsonrpc !== '2.0' || typeof message.method !== 'string') {
    ctx.body = failure(message?.id ?? null, -32600, 'invalid request');
    return;
  }
  // a notification (no id) gets no answer
  if (message.id === undefined) {
    ctx.status = 202;
    return;
  }
  ctx.body = call(message, ctx.state.auth);
});

const app = new Koa();
// Behind a TLS-terminating proxy, trust X-Forwarded-Proto/Host so DPoP proofs match the public URL:
app.proxy = process.env.TRUST_PROXY === 'true';
app.use(protectedResourceMetadata({ issuer, resource, scopes: [SCOPE], resourceName: 'Gatehouse MCP example' }));
app.use(router.routes()).use(router.allowedMethods());
app.listen(port, process.env.HOST, () => console.log(`MCP API on ${resource} (issuer ${issuer})`));
