// A tiny API protected by Gatehouse: GET /protected needs a token for
// https://api.example.com with the read:things scope.
//
// `gatehouse/resource` resolves through package.json "exports" (a package may
// import itself by name); it points at dist/, so run `npm run build` first.
// In your own API, `npm install gatehouse` and keep the same import.
import Koa from 'koa';
import Router from '@koa/router';
import { requireToken } from 'gatehouse/resource';

const issuer = process.env.ISSUER ?? 'http://localhost:3000';
const audience = process.env.AUDIENCE ?? 'https://api.example.com';
const port = Number(process.env.PORT ?? 4000);

const router = new Router();
router.get('/protected', requireToken({ issuer, audience, scopes: ['read:things'] }), (ctx) => {
  const { subject, scopes } = ctx.state.auth;
  ctx.body = { message: 'Hello from a protected API', sub: subject, scope: scopes.join(' ') };
});

const app = new Koa();
// Behind a TLS-terminating proxy, trust X-Forwarded-Proto/Host so DPoP proofs match the public URL:
app.proxy = process.env.TRUST_PROXY === 'true';
app.use(router.routes()).use(router.allowedMethods());
app.listen(port, process.env.HOST, () => console.log(`protected API on http://localhost:${port}/protected (issuer ${issuer}, audience ${audience})`));
