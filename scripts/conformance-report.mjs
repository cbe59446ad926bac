#!/usr/bin/env node
/**
 * npm run conformance: runs the conformance suite (jest test/conformance, after a build)
 * and writes docs/CONFORMANCE.md, a table per plan of every module with its result
 * (passed / failed / not run / out of scope) and why a module is out of scope.
 *
 *   node scripts/conformance-report.mjs                   # build, run, write
 *   node scripts/conformance-report.mjs --from out.json   # write from an earlier `jest --json` output
 *
 * The catalogue (plans, modules, reasons) is test/conformance/plans.ts, loaded through
 * TypeScript's transpiler so this script needs no build of the tests.
 * Exits 1 when a run module failed.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import ts from 'typescript';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const OUT = join(ROOT, 'docs', 'CONFORMANCE.md');

async function loadCatalogue() {
  const source = readFileSync(join(ROOT, 'test', 'conformance', 'plans.ts'), 'utf8');
  const js = ts.transpileModule(source, { compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 } }).outputText;
  const file = join(mkdtempSync(join(tmpdir(), 'conformance-')), 'plans.mjs');
  writeFileSync(file, js);
  return import(pathToFileURL(file).href);
}

function runJest() {
  const build = spawnSync('npm', ['run', 'build'], { cwd: ROOT, stdio: 'inherit' });
  if (build.status !== 0) process.exit(build.status ?? 1);
  const output = join(mkdtempSync(join(tmpdir(), 'conformance-')), 'results.json');
  // catalogue.test.ts checks the file this writes: it runs after, in npm test
  spawnSync(process.execPath, ['--experimental-vm-modules', 'node_modules/jest/bin/jest.js', 'test/conformance', '--testPathIgnorePatterns', 'catalogue\\.test', '--json', `--outputFile=${output}`], {
    cwd: ROOT, stdio: 'inherit', env: { ...process.env, CI: process.env.CI ?? 'true' },
  });
  return output;
}

/** "plan module" → passed/failed, from jest's --json output (ancestorTitles[0] is the plan). */
function resultsOf(jestJson) {
  const results = new Map();
  for (const file of jestJson.testResults ?? []) {
    for (const t of file.assertionResults ?? []) {
      const key = `${t.ancestorTitles[0]} ${t.title}`;
      const status = t.status === 'passed' ? 'passed' : t.status === 'failed' ? 'failed' : 'not run';
      results.set(key, { status, message: (t.failureMessages ?? []).join('\n') });
    }
  }
  return results;
}

const cell = (s) => String(s ?? '').replace(/\|/g, '\\|').replace(/\s*\n\s*/g, ' ');

export const INTRODUCTION = `# OpenID conformance

Gatehouse is tested against the OpenID Foundation's conformance plans, rebuilt as jest tests in
\`test/conformance/\`: one test per conformance module, named exactly after it, asserting what the
module asserts, against the real server (\`node dist/main.js\`), the real CLI, a stand-in Google
(a real oidc-provider) as the upstream people sign in with, and headless Chromium as the person.
The catalogue of plans and modules is \`test/conformance/plans.ts\`; \`npm run conformance\` runs
the suite and rewrites this file, and \`test/conformance/catalogue.test.ts\` fails when this file
no longer lists every module with its status.

The official suite (openid-certification/conformance-suite) needs Java, MongoDB and Docker, and
cannot run where these tests run. A real certification run needs: a public https issuer that the
OpenID Foundation's hosted suite (https://www.certification.openid.net) or a local copy of the
suite can reach; for each plan, clients configured as below (Basic OP and Form Post OP: two
confidential clients created with \`gatehouse clients create --grant-type authorization_code
--grant-type refresh_token --redirect-uri <the suite's callback> --pkce optional\`, since those
plans send no PKCE, one of them with \`--auth-method client_secret_post\`; Dynamic OP:
\`REGISTRATION=open\` or an initial access token from \`gatehouse registration-tokens create\`
(Gatehouse requires PKCE of every self-registered client and offers only \`response_type=code\`,
so the hosted Dynamic OP plan, which sends no PKCE and wants implicit and hybrid response types in
discovery, would fail the modules whose notes say so below);
logout plans: \`--post-logout-redirect-uri\` and \`--backchannel-logout-uri\` with
\`ALLOW_PRIVATE_NETWORK_REQUESTS\` only if the suite is local; FAPI 2.0: a \`--profile fapi2\`
client with \`private_key_jwt\` keys); and a GitHub, Google or OpenID Connect upstream test
account to sign in with while the suite drives the browser.

## Design decisions behind the results

| feature | Gatehouse | why |
|---|---|---|
| PKCE | required by default; an admin can make a confidential client outside \`fapi2\` PKCE-optional (\`--pkce optional\`); never for public, \`fapi2\` or self-registered clients | RFC 9700 §2.1.1; the Basic OP modules send no PKCE |
| response types | \`code\` only; \`code id_token\`, \`id_token\`, \`token\` get \`unsupported_response_type\` and are refused at registration | RFC 9700 §2.1.2 discourages tokens in the front channel; the implicit and hybrid plans are out of scope |
| \`response_mode=form_post\` | supported (oidc-provider's own) | the Form Post OP plan |
| GET and POST at \`/auth\` and \`/session/end\` | POST on an https issuer, where the session cookie is \`SameSite=None; Secure\` | a cross-site POST carries only SameSite=None cookies, which need https; CSRF protection rests on per-form tokens, not on that cookie (README, "GET and POST") |
| \`redirect_uri\` | required in every authorization and token request | OpenID Connect Core 3.1.2.1 |
| request objects | \`request\` refused (\`request_not_supported\`); \`request_uri\` only from PAR (\`request_uri_not_supported\`) | PAR is the supported way to pass a request by reference; no server-side fetches of app URLs |
| \`claims\` parameter | supported; an essential \`acr\` the sign-in cannot meet ends with \`unmet_authentication_requirements\` | OpenID Connect Core 5.5 |
| signed UserInfo | \`userinfo_signed_response_alg\` ES256 or RS256, kept at registration | OpenID Connect Core 5.3.2 |
| pairwise subjects, encryption | refused at registration (\`invalid_client_metadata\`) | not offered: \`sector_identifier_uri\` would be a server-side fetch, and no key management for encryption |
| re-authentication | \`prompt=login\` and \`max_age\` go to an OpenID Connect upstream, whose \`auth_time\` must satisfy them (else \`login_required\`); GitHub gets \`prompt=select_account\` and its sign-ins say \`acr\` \`0\` | Gatehouse checks no credential itself; it says only what the upstream vouched for (README, "Re-authentication") |
| a reused code | revokes the tokens issued from that code, not the grant | RFC 6749 §4.1.2 |

Results: **passed** and **failed** are this run's; **not run** means the module is in scope but
its test did not run (or does not exist yet); **out of scope** says why.
`;

function planTable(plan, results) {
  const rows = plan.modules.map((m) => {
    if (m.status === 'out-of-scope') return `| \`${m.name}\` | out of scope | ${cell(m.reason)} |`;
    const r = results.get(`${plan.name} ${m.name}`);
    const status = r?.status ?? 'not run';
    const why = status === 'failed' ? cell(r.message.split('\n').find((l) => l.trim()) ?? '').slice(0, 300) : cell(m.note);
    return `| \`${m.name}\` | ${status} | ${why} |`;
  });
  return [
    `## ${plan.title}: \`${plan.name}\``, '',
    `Variant: ${plan.variant}. Tests: \`test/conformance/${plan.testFile}\`.`, '',
    '| module | result | notes |', '|---|---|---|', ...rows, '',
  ].join('\n');
}

export function renderReport(catalogue, results) {
  const parts = [INTRODUCTION];
  for (const plan of catalogue.PLANS) parts.push(planTable(plan, results));
  parts.push('## Plans out of scope', '', '| plan | why |', '|---|---|');
  for (const p of catalogue.PLANS_OUT_OF_SCOPE) parts.push(`| \`${p.name}\` | ${cell(p.reason)} |`);
  return `${parts.join('\n')}\n`;
}

async function main() {
  const from = process.argv.indexOf('--from');
  const jsonFile = from > 0 ? process.argv[from + 1] : runJest();
  const catalogue = await loadCatalogue();
  const results = resultsOf(JSON.parse(readFileSync(jsonFile, 'utf8')));
  writeFileSync(OUT, renderReport(catalogue, results));
  const failed = [...results.values()].filter((r) => r.status === 'failed').length;
  process.stdout.write(`wrote ${OUT} (${failed} failed)\n`);
  process.exit(failed ? 1 : 0);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) await main();
