/**
 * The modules of oidcc-basic-certification-test-plan, defined once for both plans that
 * run them: Basic OP (response_mode default: the query) and Form Post OP (the same
 * modules with response_mode=form_post). `defineBasicPlan(planName, responseMode)` makes
 * the `describe(planName)` with one `test(<module>)` per run module of test/conformance/plans.ts.
 *
 * The whole file runs against an https issuer (ISSUER=https://localhost:<port> behind the
 * harness's forwarding edge), as a certification would: oidcc-ensure-post-request-succeeds
 * needs it, because POST /auth needs SameSite=None cookies.
 */
import { expect } from '@jest/globals';
import { browserAvailable } from '../support/browser.js';
import { PLANS } from './plans.js';
import {
  authorizationParams, codeFlow, discovery, earlyClients, expectCode, expectError, expectRedirect, introspect, launchConformanceBrowser,
  redeemCode, startConformanceOp, tokenRequest, userinfo, validateIdToken,
  type AuthorizationOutcome, type BrowserSession, type CodeFlowOptions, type ConformanceBrowser, type ConformanceClient, type ConformanceOp,
} from './support/index.js';

export type ResponseMode = 'query' | 'form_post';

export interface BasicContext {
  op: ConformanceOp;
  browser: ConformanceBrowser;
  /** client_secret_basic, --pkce optional */
  client: ConformanceClient;
  /** client_secret_post, --pkce optional */
  postClient: ConformanceClient;
  /** another client_secret_basic client: codes and refresh tokens must not work for it */
  otherClient: ConformanceClient;
  responseMode: ResponseMode;
  /** a fresh browser (no cookies), closed after the test: for modules that say "remove any cookies" */
  session(): Promise<BrowserSession>;
  /** the plan's one browser that stays signed in across modules (as when the suite runs a plan in one browser) */
  shared(): Promise<BrowserSession>;
  /** codeFlow with this plan's response mode and the Basic client */
  flow(session: BrowserSession, options?: Partial<CodeFlowOptions>): ReturnType<typeof codeFlow>;
  /** this plan's response_mode parameter (none for the default) */
  mode(): { responseMode?: 'form_post' };
  /** asserts the outcome came back the way this plan's response mode says */
  expectVia(outcome: AuthorizationOutcome): void;
}

const clientSpec = (name: string, authMethod: 'client_secret_basic' | 'client_secret_post') =>
  ({ name, authMethod, pkce: 'optional' as const, grantTypes: ['authorization_code', 'refresh_token'] });

/** beforeAll/afterAll of a plan file: one https Gatehouse, one Chromium, three clients. */
export function basicContext(responseMode: ResponseMode): BasicContext {
  const sessions: BrowserSession[] = [];
  let shared: Promise<BrowserSession> | undefined;
  const ctx = { responseMode } as BasicContext;
  beforeAll(async () => {
    ctx.op = await startConformanceOp({
      https: true,
      clients: [clientSpec('Conformance RP', 'client_secret_basic'), clientSpec('Conformance RP (post)', 'client_secret_post'), clientSpec('Other RP', 'client_secret_basic')],
    });
    [ctx.client, ctx.postClient, ctx.otherClient] = earlyClients(ctx.op);
    ctx.browser = await launchConformanceBrowser(ctx.op);
  });
  afterEach(async () => {
    await Promise.all(sessions.splice(0).map((s) => s.close()));
  });
  afterAll(async () => {
    await ctx.browser?.close();
    await ctx.op?.stop();
  });
  ctx.session = async () => {
    const s = await ctx.browser.newSession();
    sessions.push(s);
    return s;
  };
  ctx.shared = () => (shared ??= ctx.browser.newSession());
  ctx.mode = () => (responseMode === 'form_post' ? { responseMode: 'form_post' } : {});
  ctx.expectVia = (outcome) => {
    expectRedirect(outcome);
    expect(outcome.via).toBe(responseMode);
  };
  ctx.flow = async (session, options = {}) => {
    const result = await codeFlow(ctx.op, session, { client: ctx.client, ...ctx.mode(), ...options });
    ctx.expectVia(result.outcome);
    return result;
  };
  return ctx;
}

/** The suite's CheckTokenEndpointCacheHeaders. */
export function expectNoStore(headers: Headers): void {
  expect(headers.get('cache-control')).toMatch(/no-store/);
  expect(headers.get('pragma')).toMatch(/no-cache/);
}

export type ModuleTest = (ctx: BasicContext) => Promise<void>;

/** One describe per plan, one test per run module, in the plan's order. */
export function defineBasicPlan(planName: string, responseMode: ResponseMode, modules: Record<string, ModuleTest>): void {
  const plan = PLANS.find((p) => p.name === planName);
  if (!plan) throw new Error(`no plan ${planName} in plans.ts`);
  const describeIf = browserAvailable() ? describe : describe.skip;
  describeIf(planName, () => {
    const ctx = basicContext(responseMode);
    for (const module of plan.modules.filter((m) => m.status === 'run')) {
      const body = modules[module.name];
      if (!body) throw new Error(`${planName}: no test for module ${module.name}`);
      test(module.name, () => body(ctx), module.name === 'oidcc-codereuse-30seconds' ? 60_000 : 30_000);
    }
  });
}

export { authorizationParams, discovery, expectCode, expectError, introspect, redeemCode, tokenRequest, userinfo, validateIdToken };
