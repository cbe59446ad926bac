/**
 * The OpenID Foundation conformance plans Gatehouse is tested against, module by
 * module, as published in openid-certification/conformance-suite (the plan classes
 * src/main/java/net/openid/conformance/openid/OIDCC*TestPlan.java and
 * fapi2spfinal/FAPI2SPFinalTestPlan.java). Each module is either `run` (a jest test named
 * exactly after it exists in the plan's `testFile`, inside `describe(<plan name>)`) or
 * `out-of-scope`, with the reason. `note` says what the test asserts when the official
 * suite would skip the module or accept either of two outcomes.
 *
 * docs/CONFORMANCE.md is generated from this list and the jest results
 * (`npm run conformance`); test/conformance/catalogue.test.ts keeps the two in step.
 */
export type ModuleStatus = 'run' | 'out-of-scope';

export interface ConformanceModule {
  name: string;
  status: ModuleStatus;
  /** why a module is out of scope */
  reason?: string;
  /** what a run module asserts where the suite allows more than one outcome */
  note?: string;
}

export interface ConformancePlan {
  name: string;
  title: string;
  /** the variant Gatehouse runs */
  variant: string;
  /** the jest file (under test/conformance) with one test per run module */
  testFile: string;
  modules: ConformanceModule[];
}

const runModule = (name: string, note?: string): ConformanceModule => (note ? { name, status: 'run', note } : { name, status: 'run' });
const run = runModule;
const out = (name: string, reason: string): ConformanceModule => ({ name, status: 'out-of-scope', reason });

const REQUEST_OBJECTS = 'Gatehouse refuses request objects (`request`: request_not_supported; `request_uri` other than PAR: request_uri_not_supported), and this module accepts no refusal';
const NO_ADDRESS_PHONE = 'scopes_supported omits it (upstreams give no address or phone), so the suite skips this module; asserted: not advertised, and a request with it still succeeds without such claims';

/** Basic OP, in the plan's order; Form Post OP is the same list with response_mode=form_post. */
function basicModules(): ConformanceModule[] {
  return [
    run('oidcc-server'),
    run('oidcc-response-type-missing', 'Gatehouse redirects back with invalid_request (the suite also accepts unsupported_response_type or an error page)'),
    run('oidcc-idtoken-signature'),
    run('oidcc-idtoken-unsigned', '`none` is not in id_token_signing_alg_values_supported, so the suite skips it; asserted: not advertised, and ID tokens are signed'),
    run('oidcc-userinfo-get'),
    run('oidcc-userinfo-post-header'),
    run('oidcc-userinfo-post-body', 'the access token in the body is accepted'),
    run('oidcc-ensure-request-without-nonce-succeeds-for-code-flow'),
    run('oidcc-scope-profile'),
    run('oidcc-scope-email'),
    run('oidcc-scope-address', NO_ADDRESS_PHONE),
    run('oidcc-scope-phone', NO_ADDRESS_PHONE),
    run('oidcc-scope-all', NO_ADDRESS_PHONE),
    run('oidcc-alternate-happy-flow'),
    run('oidcc-display-page', 'screenshot module: the normal login page (provider buttons, the app) is shown'),
    run('oidcc-display-popup', 'screenshot module: the normal login page is shown'),
    run('oidcc-prompt-login'),
    run('oidcc-prompt-none-not-logged-in'),
    run('oidcc-prompt-none-logged-in'),
    run('oidcc-max-age-1'),
    run('oidcc-max-age-10000'),
    run('oidcc-ensure-request-with-unknown-parameter-succeeds'),
    run('oidcc-id-token-hint'),
    run('oidcc-login-hint'),
    run('oidcc-ui-locales', 'screenshot module: the login page is shown (in English, the only locale) and the request succeeds'),
    run('oidcc-claims-locales'),
    run('oidcc-ensure-request-with-acr-values-succeeds'),
    run('oidcc-codereuse'),
    run('oidcc-codereuse-30seconds', 'waits the 30 s; the access token from the first redemption is revoked (userinfo 401, introspection inactive)'),
    run('oidcc-ensure-registered-redirect-uri', 'screenshot module: the "Unknown return address" error page, no redirect'),
    run('oidcc-ensure-post-request-succeeds', 'POST /auth is offered on an https issuer only (SameSite=None cookies): run against ISSUER=https://localhost behind a forwarding edge'),
    run('oidcc-server-client-secret-post'),
    run('oidcc-request-uri-unsigned-supported-correctly-or-rejected-as-unsupported', 'rejected as unsupported: request_uri_not_supported at the redirect URI'),
    run('oidcc-unsigned-request-object-supported-correctly-or-rejected-as-unsupported', 'rejected as unsupported: request_not_supported at the redirect URI'),
    run('oidcc-claims-essential'),
    out('oidcc-ensure-request-object-with-redirect-uri', REQUEST_OBJECTS),
    run('oidcc-refresh-token'),
    run('oidcc-ensure-request-with-valid-pkce-succeeds'),
  ];
}

/** Dynamic OP: self-registered clients cannot opt out of PKCE, and the hosted suite sends none. */
const DYNAMIC_PKCE = 'sends PKCE: a self-registered client cannot opt out of it (RFC 9700 §2.1.1; only an admin can make a confidential client PKCE-optional), so the hosted suite, which sends none, would fail this module';
const NO_TLS = 'the TLS checks of this module (TLS 1.2+, BCP 195 ciphers, no TLS 1.0/1.1) are not made: Gatehouse runs behind a TLS-ending proxy, and these tests have no real TLS endpoint; the rest of the module is';

const NOT_PLAIN_FAPI = 'not applicable to the plain_fapi variant (the plan itself leaves it out)';

const SECTOR = 'Gatehouse issues public subjects only and never fetches a sector_identifier_uri (registration refuses it with invalid_client_metadata)';

export const PLANS: ConformancePlan[] = [
  {
    name: 'oidcc-basic-certification-test-plan',
    title: 'Basic OP',
    variant: 'response_type=code, client_secret_basic (client_secret_post for oidcc-server-client-secret-post), response_mode default, static client',
    testFile: 'basic-op.test.ts',
    modules: basicModules(),
  },
  {
    name: 'oidcc-config-certification-test-plan',
    title: 'Config OP',
    variant: 'server_metadata=discovery, client_registration=static_client',
    testFile: 'config-op.test.ts',
    modules: [run('oidcc-discovery-endpoint-verification')],
  },
  {
    name: 'oidcc-formpost-basic-certification-test-plan',
    title: 'Form Post OP',
    variant: 'the Basic OP modules with response_mode=form_post',
    testFile: 'form-post-op.test.ts',
    modules: basicModules(),
  },
  {
    name: 'oidcc-dynamic-certification-test-plan',
    title: 'Dynamic OP',
    variant: 'response_type=code, private_key_jwt, dynamic_client, server_metadata=discovery',
    testFile: 'dynamic-op.test.ts',
    modules: [
      run('oidcc-idtoken-rs256', DYNAMIC_PKCE),
      run('oidcc-idtoken-unsigned', '`none` is refused at registration (invalid_client_metadata) and not advertised'),
      run('oidcc-userinfo-rs256', DYNAMIC_PKCE),
      run('oidcc-ensure-redirect-uri-in-authorization-request'),
      run('oidcc-redirect-uri-query-OK', DYNAMIC_PKCE),
      run('oidcc-redirect-uri-query-mismatch'),
      run('oidcc-redirect-uri-query-added'),
      run('oidcc-redirect-uri-regfrag'),
      run('oidcc-discovery-endpoint-verification', 'asserts response_types_supported is [code] and every other check of the module; the hosted suite requires implicit and hybrid response types in this variant, so it fails this module by design (code only)'),
      run('oidcc-server', DYNAMIC_PKCE),
      run('oidcc-registration-logo-uri', `screenshot module: the login and consent pages show the registered logo; ${DYNAMIC_PKCE}`),
      run('oidcc-registration-policy-uri', `screenshot module: the consent page links the registered policy; ${DYNAMIC_PKCE}`),
      run('oidcc-registration-tos-uri', `screenshot module: the consent page links the registered terms; ${DYNAMIC_PKCE}`),
      run('oidcc-registration-jwks-uri', DYNAMIC_PKCE),
      out('oidcc-registration-sector-uri', SECTOR),
      run('oidcc-registration-sector-bad', 'registration fails (invalid_client_metadata): sector_identifier_uri is refused outright'),
      run('oidcc-server-rotate-keys'),
      run('oidcc-refresh-token-rp-key-rotation', DYNAMIC_PKCE),
      out('oidcc-request-uri-unsigned', REQUEST_OBJECTS),
      out('oidcc-request-uri-signed-rs256', REQUEST_OBJECTS),
      out('oidcc-ensure-request-object-with-redirect-uri', REQUEST_OBJECTS),
      run('oidcc-refresh-token', DYNAMIC_PKCE),
      run('oidcc-ensure-client-assertion-with-iss-aud-succeeds', DYNAMIC_PKCE),
    ],
  },
  {
    name: 'oidcc-rp-initiated-logout-certification-test-plan',
    title: 'RP-Initiated Logout OP',
    variant: 'server_metadata=discovery, client_secret_basic, response_mode default',
    testFile: 'rp-initiated-logout.test.ts',
    modules: [
      run('oidcc-rp-initiated-logout-discovery-endpoint-verification'),
      run('oidcc-rp-initiated-logout', 'by GET and by POST at /session/end (POST on an https issuer)'),
      run('oidcc-rp-initiated-logout-bad-post-logout-redirect-uri', 'an error page (400), no redirect'),
      run('oidcc-rp-initiated-logout-modified-id-token-hint', 'an ID token hint changed to alg none: an error page (400), no redirect'),
      run('oidcc-rp-initiated-logout-no-id-token-hint', 'a post_logout_redirect_uri without id_token_hint: the confirmation page, then "signed out" without a redirect'),
      run('oidcc-rp-initiated-logout-no-params'),
      run('oidcc-rp-initiated-logout-no-post-logout-redirect-uri'),
      run('oidcc-rp-initiated-logout-no-state'),
      run('oidcc-rp-initiated-logout-only-state'),
      run('oidcc-rp-initiated-logout-query-added-to-post-logout-redirect-uri', 'an error page (400), no redirect'),
      run('oidcc-rp-initiated-logout-bad-id-token-hint', 'a hint signed with the client secret: an error page (400), no redirect'),
    ],
  },
  {
    name: 'oidcc-backchannel-rp-initiated-logout-certification-test-plan',
    title: 'Back-Channel Logout OP',
    variant: 'server_metadata=discovery, client_secret_basic, response_mode default',
    testFile: 'backchannel-logout.test.ts',
    modules: [run('oidcc-backchannel-logout-discovery-endpoint-verification'), run('oidcc-backchannel-rp-initiated-logout')],
  },
  {
    name: 'fapi2-security-profile-final-test-plan',
    title: 'FAPI 2.0 Security Profile',
    variant: 'fapi_profile=plain_fapi, client_auth_type=private_key_jwt, sender_constrain=dpop, openid=openid_connect, fapi_request_method=unsigned, fapi_response_mode=plain_response',
    testFile: 'fapi2-security-profile.test.ts',
    modules: fapi2Modules(),
  },
];

function fapi2Modules(): ConformanceModule[] {
  const p = 'fapi2-security-profile-final-';
  const runs = [
    'discovery-end-point-verification', 'happy-flow', 'user-rejects-authentication',
    'ensure-authorization-request-without-state-success', 'ensure-authorization-request-without-nonce-success',
    'ensure-authorization-request-with-64-char-nonce-success', 'ensure-other-scope-order-succeeds',
    'test-claims-parameter-identity-claims', 'access-token-type-header-case-sensitivity', 'check-dpop-proof-nbf-exp',
    'ensure-dpopproof-with-iat-10seconds-before-succeeds', 'ensure-dpopproof-with-iat-10seconds-after-succeeds',
    'ensure-mismatched-dpop-jkt-fails', 'ensure-token-endpoint-fails-with-mismatched-dpop-proof-jkt',
    'ensure-token-endpoint-fails-with-mismatched-dpop-jkt', 'ensure-dpopproof-at-par-endpoint-binding-success',
    'ensure-dpop-auth-code-binding-success', 'ensure-different-nonce-inside-and-outside-request-object',
    'ensure-different-state-inside-and-outside-request-object', 'ensure-authorization-request-with-long-nonce',
    'ensure-authorization-request-with-long-state', 'state-only-outside-request-object-not-used',
    'ensure-request-object-without-redirect-uri-fails',
  ];
  const runs2 = [
    'plain-fapi-tolerate-unregistered-redirect-uri', 'ensure-unsigned-authorization-request-without-using-par-fails',
    'ensure-redirect-uri-in-authorization-request', 'ensure-response-type-code-idtoken-fails',
  ];
  const runs3 = [
    'ensure-response-type-token-fails', 'ensure-client-id-in-token-endpoint', 'ensure-holder-of-key-required',
    'ensure-authorization-code-is-bound-to-client', 'attempt-reuse-authorization-code-after-one-second',
    'ensure-token-endpoint-fails-with-expired-auth-code', 'ensure-signed-client-assertion-with-RS256-fails',
    'ensure-client-assertion-in-token-endpoint', 'ensure-client-assertion-with-exp-is-5-minutes-in-past-fails',
    'ensure-client-assertion-with-wrong-aud-fails', 'ensure-client-assertion-with-no-sub-fails', 'dpop-negative-tests',
    'refresh-token',
  ];
  const runs4 = [
    'par-ensure-reused-request-uri-prior-to-auth-completion-succeeds', 'par-attempt-reuse-request_uri',
    'par-attempt-to-use-expired-request_uri', 'par-ensure-jwt-client-assertions-nbf-8-seconds-in-the-future-is-accepted',
    'par-ensure-jwt-client-assertions-nbf-over-60-seconds-in-the-future-fails', 'par-attempt-to-use-request_uri-for-different-client',
    'par-authorization-request-containing-request_uri-form-param', 'par-attempt-invalid-http-method', 'par-ensure-pkce-required',
    'ensure-pkce-code-verifier-required', 'incorrect-pkce-code-verifier-rejected', 'par-plain-pkce-rejected',
    'par-without-duplicate-parameters', 'par-test-array-as-audience-fails', 'par-test-par-endpoint-url-as-audience-fails',
    'par-test-token-endpoint-url-as-audience-fails',
  ];
  const notes: Record<string, string> = {
    'happy-flow': NO_TLS,
    'ensure-holder-of-key-required': `${NO_TLS} (a token request without a DPoP proof is refused)`,
    'par-authorization-request-containing-request_uri-form-param': 'request_uri_not_supported (the module accepts it, invalid_request or invalid_request_object)',
    'par-attempt-invalid-http-method': 'PUT /request answers 404; the module asks for a 4xx (RFC 9126 suggests 405)',
  };
  const run = (name: string) => runModule(name, notes[name.slice(p.length)]);
  return [
    ...runs.map((n) => run(p + n)),
    out(`${p}ensure-registered-redirect-uri`, NOT_PLAIN_FAPI),
    ...runs2.map((n) => run(p + n)),
    out(`${p}australia-connectid-ensure-invalid-purpose-fails`, NOT_PLAIN_FAPI),
    ...runs3.map((n) => run(p + n)),
    out(`${p}ensure-server-handles-non-matching-intent-id`, NOT_PLAIN_FAPI),
    out(`${p}test-essential-acr-sca-claim`, NOT_PLAIN_FAPI),
    out(`${p}brazil-ensure-bad-payment-signature-fails`, NOT_PLAIN_FAPI),
    out(`${p}australia-connectid-test-claims-parameter-idtoken-identity-claims`, NOT_PLAIN_FAPI),
    ...runs4.map((n) => run(p + n)),
  ];
}

/** Plans out of scope as a whole, for the report. */
export const PLANS_OUT_OF_SCOPE: { name: string; reason: string }[] = [
  { name: 'oidcc-implicit-certification-test-plan', reason: 'Gatehouse offers response_type=code only; implicit requests get unsupported_response_type' },
  { name: 'oidcc-hybrid-certification-test-plan', reason: 'Gatehouse offers response_type=code only; hybrid requests get unsupported_response_type' },
  { name: 'oidcc-formpost-implicit-certification-test-plan', reason: 'implicit: response_type=code only' },
  { name: 'oidcc-formpost-hybrid-certification-test-plan', reason: 'hybrid: response_type=code only' },
  { name: 'oidcc-frontchannel-rp-initiated-logout-certification-test-plan', reason: 'front-channel logout is not offered (back-channel is)' },
  { name: 'oidcc-session-management-certification-test-plan', reason: 'OpenID Connect Session Management (check_session_iframe) is not offered' },
];
