import { AUTH_METHODS, CLIENT_PROFILES, GRANT_TYPES, PKCE_POLICIES, SIGNING_ALGS, TOKEN_FORMATS } from '../common/protocol.js';
import { AUDIT_ACTIONS, AUDIT_TARGETS } from '../services/audit.js';
import { ROLES } from '../services/roles.js';

/**
 * The management API's contract (OpenAPI 3.1), served at
 * /admin/v1/openapi.json. The API suite validates every response it gets
 * against this document, so the two cannot drift apart.
 */

const string = { type: 'string' } as const;
const strings = { type: 'array', items: string } as const;
const dateTime = { type: 'string', format: 'date-time' } as const;
const nullable = (schema: object) => ({ oneOf: [schema, { type: 'null' }] });
const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const consoleRole = { ...nullable({ enum: [...ROLES] }), description: 'the console role; null: no console access' };

const clientFields = {
  name: string,
  grantTypes: { type: 'array', items: { enum: [...GRANT_TYPES] } },
  redirectUris: strings,
  tokenEndpointAuthMethod: { enum: [...AUTH_METHODS] },
  jwks: nullable({ type: 'object', properties: { keys: { type: 'array', items: { type: 'object' } } }, required: ['keys'] }),
  jwksUri: nullable(string),
  profile: { enum: [...CLIENT_PROFILES] },
  scopes: strings,
  resources: strings,
  firstParty: { type: 'boolean' },
  postLogoutRedirectUris: strings,
  backchannelLogoutUri: nullable(string),
  requirePar: { type: 'boolean' },
  pkce: { enum: [...PKCE_POLICIES] },
} as const;

const apiFields = {
  name: string, scopes: strings, accessTokenTtl: { type: 'integer' }, tokenFormat: { enum: [...TOKEN_FORMATS] },
  signingAlg: { enum: [...SIGNING_ALGS] }, introspectors: strings, allowRegisteredClients: { type: 'boolean' },
} as const;

const problemResponse = (description: string) => ({ description, content: { 'application/problem+json': { schema: ref('Problem') } } });
const json = (description: string, schema: object, headers?: object) => ({ description, ...(headers ? { headers } : {}), content: { 'application/json': { schema } } });
const etag = { ETag: { description: 'the version to send back in If-Match', schema: string } };
const errors = {
  400: problemResponse('the input breaks a rule: `errors` lists every problem with its path'),
  401: problemResponse('no valid access token for this API'),
  403: problemResponse('the token lacks the scope (admin:read for reads, admin:write for changes)'),
};
const notFound = { 404: problemResponse('no such object') };
const preconditions = {
  412: problemResponse('If-Match does not name the current version'),
  428: problemResponse('If-Match is required to change an existing object'),
};
const page = (item: string) => ({
  type: 'object', additionalProperties: false, required: ['items', 'next'],
  properties: { items: { type: 'array', items: ref(item) }, next: nullable(string) },
});
const idParam = (name: string, description: string) => ({ name, in: 'path', required: true, description, schema: string });
const read = (summary: string, responses: object, parameters: object[] = []) => ({ summary, security: [{ gatehouse: ['admin:read'] }], parameters, responses: { ...responses, ...errors } });
const bodyErrors = {
  413: problemResponse('the body is larger than 100 kB'),
  415: problemResponse('the body is not application/json'),
};
const write = (summary: string, responses: object, extra: { requestBody?: object; parameters?: object[] } = {}) => ({
  summary, security: [{ gatehouse: ['admin:write'] }], ...extra, responses: { ...responses, ...errors, ...(extra.requestBody ? bodyErrors : {}) },
});
const body = (schema: object) => ({ requestBody: { required: true, content: { 'application/json': { schema } } } });
const ifMatch = { name: 'If-Match', in: 'header', required: true, description: 'the ETag of the version you read', schema: string };

export function adminOpenApi(issuer: string) {
  return {
    openapi: '3.1.0',
    info: {
      title: 'Gatehouse management API',
      version: '1',
      description: 'Clients, APIs, registration tokens, signing keys, consents, accounts, webhooks and the audit trail. Protected by Gatehouse access tokens for the API `' + `${issuer}/admin/v1` + '` (scopes admin:read and admin:write), e.g. from client_credentials. Errors are RFC 9457 problem details.',
    },
    servers: [{ url: `${issuer}/admin/v1` }],
    components: {
      securitySchemes: {
        gatehouse: {
          type: 'oauth2',
          flows: { clientCredentials: { tokenUrl: `${issuer}/token`, scopes: { 'admin:read': 'read everything', 'admin:write': 'change everything' } } },
        },
      },
      schemas: {
        Problem: {
          type: 'object', required: ['type', 'title', 'status'],
          properties: {
            type: string, title: string, status: { type: 'integer' }, detail: string,
            errors: { type: 'array', items: { type: 'object', required: ['path', 'message'], properties: { path: { type: 'array', items: { type: ['string', 'integer'] } }, message: string } } },
          },
        },
        Client: {
          type: 'object', additionalProperties: false,
          required: ['clientId', ...Object.keys(clientFields), 'dynamic', 'metadata', 'hasSecret', 'createdAt', 'updatedAt'],
          properties: { clientId: string, ...clientFields, dynamic: { type: 'boolean' }, metadata: { type: 'object' }, hasSecret: { type: 'boolean' }, createdAt: dateTime, updatedAt: dateTime,
            credentialsChangedAt: { ...nullable(dateTime), description: 'the last change of the secret, keys or auth method: management tokens issued before are refused' } },
        },
        ClientWithSecret: {
          type: 'object', additionalProperties: false,
          required: ['clientId', ...Object.keys(clientFields), 'dynamic', 'metadata', 'hasSecret', 'createdAt', 'updatedAt'],
          properties: {
            clientId: string, ...clientFields, dynamic: { type: 'boolean' }, metadata: { type: 'object' }, hasSecret: { type: 'boolean' }, createdAt: dateTime, updatedAt: dateTime, credentialsChangedAt: nullable(dateTime),
            clientSecret: { ...string, description: 'shown once, for a client that authenticates with a secret; only its hash is kept' },
          },
        },
        ClientInput: { type: 'object', properties: { clientId: string, ...clientFields } },
        ClientPage: page('Client'),
        Secret: { type: 'object', additionalProperties: false, required: ['clientId', 'clientSecret'], properties: { clientId: string, clientSecret: string } },
        Api: {
          type: 'object', additionalProperties: false,
          required: ['identifier', 'name', 'scopes', 'accessTokenTtl', 'tokenFormat', 'signingAlg', 'introspectors', 'allowRegisteredClients', 'createdAt', 'updatedAt'],
          properties: {
            identifier: string, name: string, scopes: strings, accessTokenTtl: { type: 'integer' }, tokenFormat: { enum: [...TOKEN_FORMATS] },
            signingAlg: { enum: [...SIGNING_ALGS] }, introspectors: strings, allowRegisteredClients: { type: 'boolean' }, createdAt: dateTime, updatedAt: dateTime,
          },
        },
        ApiInput: { type: 'object', required: ['identifier'], properties: { identifier: string, ...apiFields } },
        ApiList: { type: 'object', additionalProperties: false, required: ['items'], properties: { items: { type: 'array', items: ref('Api') } } },
        RegistrationToken: {
          type: 'object', additionalProperties: false, required: ['prefix', 'expiresAt', 'used', 'policies'],
          properties: { prefix: string, expiresAt: nullable(dateTime), used: { type: 'boolean' }, policies: strings },
        },
        RegistrationTokenCreated: {
          type: 'object', additionalProperties: false, required: ['token', 'prefix', 'expiresAt', 'singleUse'],
          properties: { token: { ...string, description: 'shown once' }, prefix: string, expiresAt: nullable(dateTime), singleUse: { type: 'boolean' } },
        },
        RegistrationTokenList: { type: 'object', additionalProperties: false, required: ['items'], properties: { items: { type: 'array', items: ref('RegistrationToken') } } },
        SigningKey: {
          type: 'object', additionalProperties: false, required: ['kid', 'alg', 'stage', 'encrypted', 'publishedAt', 'signsFrom', 'retiredAt', 'until'],
          properties: {
            kid: string, alg: { enum: [...SIGNING_ALGS] }, stage: { enum: ['published', 'signing', 'retired'] }, encrypted: { type: 'boolean' },
            publishedAt: dateTime, signsFrom: nullable(dateTime), retiredAt: nullable(dateTime), until: nullable(dateTime),
          },
        },
        SigningKeyList: { type: 'object', additionalProperties: false, required: ['items'], properties: { items: { type: 'array', items: ref('SigningKey') } } },
        Consent: {
          type: 'object', additionalProperties: false, required: ['accountId', 'clientId', 'grantId', 'createdAt', 'updatedAt'],
          properties: { accountId: string, clientId: string, grantId: string, createdAt: dateTime, updatedAt: dateTime },
        },
        ConsentList: { type: 'object', additionalProperties: false, required: ['items'], properties: { items: { type: 'array', items: ref('Consent') } } },
        AccountSummary: {
          type: 'object', additionalProperties: false,
          required: ['id', 'email', 'emailVerified', 'name', 'username', 'picture', 'disabled', 'disabledAt', 'role', 'createdAt', 'providers'],
          properties: {
            id: string, email: nullable(string), emailVerified: { type: 'boolean' }, name: nullable(string), username: nullable(string), picture: nullable(string),
            disabled: { type: 'boolean' }, disabledAt: nullable(dateTime), role: consoleRole, createdAt: dateTime, providers: strings,
          },
        },
        AccountPage: page('AccountSummary'),
        AccountDetails: {
          type: 'object', additionalProperties: false,
          required: ['id', 'email', 'emailVerified', 'name', 'username', 'picture', 'disabled', 'disabledAt', 'role', 'createdAt', 'updatedAt', 'identities', 'consents', 'sessions'],
          properties: {
            id: string, email: nullable(string), emailVerified: { type: 'boolean' }, name: nullable(string), username: nullable(string), picture: nullable(string),
            disabled: { type: 'boolean' }, disabledAt: nullable(dateTime), role: consoleRole, createdAt: dateTime, updatedAt: dateTime,
            identities: { type: 'array', items: { type: 'object', additionalProperties: false, required: ['provider', 'subject', 'email', 'emailVerified', 'linkedAt', 'updatedAt', 'profile'], properties: { provider: string, subject: string, email: nullable(string), emailVerified: { type: 'boolean' }, linkedAt: dateTime, updatedAt: dateTime, profile: { type: 'object' } } } },
            consents: { type: 'array', items: { type: 'object', additionalProperties: false, required: ['clientId', 'clientName', 'grantedAt', 'updatedAt'], properties: { clientId: string, clientName: nullable(string), grantedAt: dateTime, updatedAt: dateTime } } },
            sessions: { type: 'object', additionalProperties: false, required: ['active', 'latest'], properties: { active: { type: 'integer' }, latest: { type: 'array', items: { type: 'object', additionalProperties: false, required: ['expiresAt', 'signedInAt', 'clients'], properties: { expiresAt: nullable(dateTime), signedInAt: nullable(dateTime), clients: strings } } } } },
          },
        },
        AccountChange: {
          type: 'object', additionalProperties: false, required: ['id', 'changed', 'disabledAt', 'endedArtifacts'],
          properties: { id: string, changed: { type: 'boolean', description: 'false when it already was in that state' }, disabledAt: nullable(dateTime), endedArtifacts: { type: 'integer' } },
        },
        AccountDeletion: {
          type: 'object', additionalProperties: false, required: ['id', 'identities', 'consents', 'endedArtifacts'],
          properties: { id: string, identities: { type: 'integer' }, consents: { type: 'integer' }, endedArtifacts: { type: 'integer' } },
        },
        Webhook: {
          type: 'object', additionalProperties: false, required: ['id', 'url', 'events', 'secretEncrypted', 'disabled', 'createdAt', 'updatedAt'],
          properties: { id: string, url: string, events: strings, secretEncrypted: { type: 'boolean' }, disabled: { type: 'boolean' }, createdAt: dateTime, updatedAt: dateTime },
        },
        WebhookWithSecret: {
          type: 'object', additionalProperties: false, required: ['id', 'url', 'events', 'secretEncrypted', 'disabled', 'createdAt', 'updatedAt', 'secret'],
          properties: {
            id: string, url: string, events: strings, secretEncrypted: { type: 'boolean' }, disabled: { type: 'boolean' }, createdAt: dateTime, updatedAt: dateTime,
            secret: { ...string, description: 'the Standard Webhooks signing secret (whsec_…), shown once' },
          },
        },
        WebhookList: { type: 'object', additionalProperties: false, required: ['items'], properties: { items: { type: 'array', items: ref('Webhook') } } },
        WebhookDelivery: {
          type: 'object', required: ['id', 'eventType', 'attempts'],
          properties: {
            id: string, webhookId: string, eventId: string, eventType: string, attempts: { type: 'integer' }, nextAttemptAt: dateTime,
            lockedUntil: nullable(dateTime), deliveredAt: nullable(dateTime), failedAt: nullable(dateTime), createdAt: dateTime,
            attemptLog: { type: 'array', items: { type: 'object', required: ['at', 'durationMs'], properties: { id: string, at: dateTime, status: nullable({ type: 'integer' }), error: nullable(string), durationMs: { type: 'integer' } } } },
          },
        },
        WebhookDetails: {
          type: 'object', required: ['id', 'url', 'events', 'deliveries'],
          properties: {
            id: string, url: string, events: strings, secretEncrypted: { type: 'boolean' }, disabled: { type: 'boolean' }, createdAt: dateTime, updatedAt: dateTime,
            deliveries: { type: 'array', items: ref('WebhookDelivery') },
          },
        },
        AuditEvent: {
          type: 'object', additionalProperties: false,
          required: ['id', 'at', 'actorType', 'actorId', 'address', 'action', 'targetType', 'targetId', 'outcome', 'details'],
          properties: {
            id: string, at: dateTime, actorType: { enum: ['cli', 'system', 'admin-client', 'account', 'client', 'anonymous'] }, actorId: nullable(string), address: nullable(string),
            action: { enum: [...AUDIT_ACTIONS] }, targetType: nullable({ enum: [...AUDIT_TARGETS] }), targetId: nullable(string), outcome: { enum: ['success', 'failure'] }, details: { type: 'object' },
          },
        },
        AuditPage: page('AuditEvent'),
      },
    },
    paths: {
      '/openapi.json': { get: { summary: 'this document', security: [], responses: { 200: json('the OpenAPI document', { type: 'object' }) } } },
      '/clients': {
        get: read('list clients, by id', { 200: json('a page', ref('ClientPage')) }, [
          { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 500 } },
          { name: 'after', in: 'query', description: 'the `next` of the previous page', schema: string },
          { name: 'dynamic', in: 'query', description: 'only clients apps registered themselves (true) or admins made (false)', schema: { enum: ['true', 'false'] } },
        ]),
        post: write('create a client; a secret-using client gets its secret once', { 201: json('created', ref('ClientWithSecret'), etag), 409: problemResponse('a client with this id exists') }, body(ref('ClientInput'))),
      },
      '/clients/{clientId}': {
        parameters: [idParam('clientId', 'the client id')],
        get: read('one client', { 200: json('the client', ref('Client'), etag), ...notFound }),
        put: write('create the client with this id, or change it (If-Match required then); fields not given stay as they are', {
          200: json('changed', ref('Client'), etag), 201: json('created', ref('ClientWithSecret'), etag), ...preconditions,
        }, { ...body(ref('ClientInput')), parameters: [{ ...ifMatch, required: false, description: 'required when the client exists' }] }),
        delete: write('delete the client, its consents and their tokens', { 204: { description: 'deleted' }, ...notFound, ...preconditions }, { parameters: [ifMatch] }),
      },
      '/clients/{clientId}/secret': {
        parameters: [idParam('clientId', 'the client id')],
        post: write('replace the secret; the new one is returned once', { 200: json('the new secret', ref('Secret')), ...notFound }),
      },
      '/apis': {
        get: read('list APIs', { 200: json('every API', ref('ApiList')) }),
        post: write('register an API', { 201: json('created', ref('Api')), 409: problemResponse('an API with this identifier exists') }, body(ref('ApiInput'))),
      },
      '/apis/{identifier}': {
        parameters: [idParam('identifier', 'the API identifier, URL-encoded')],
        get: read('one API', { 200: json('the API', ref('Api')), ...notFound }),
        put: write('create the API with this identifier, or change it; fields not given stay as they are. A scope a client still uses cannot be dropped', {
          200: json('changed', ref('Api')), 201: json('created', ref('Api')), 409: problemResponse('the change drops a scope a client still uses'),
        }, body({ type: 'object', properties: { identifier: { ...string, description: 'the identifier of the URL, or left out' }, ...apiFields } })),
        delete: write('delete an API no client uses', { 204: { description: 'deleted' }, ...notFound, 409: problemResponse('still used by clients') }),
      },
      '/registration-tokens': {
        get: read('initial access tokens that have not expired', { 200: json('tokens (prefixes only)', ref('RegistrationTokenList')) }),
        post: write('create an initial access token; returned once', { 201: json('created', ref('RegistrationTokenCreated')) }, body({
          type: 'object', properties: { expiresIn: { type: 'integer', minimum: 60, maximum: 31_536_000 }, singleUse: { type: 'boolean' } },
        })),
      },
      '/registration-tokens/{prefix}': {
        parameters: [idParam('prefix', 'at least 6 characters of the token')],
        delete: write('revoke the one token with this prefix', { 204: { description: 'revoked' }, ...notFound, 409: problemResponse('several tokens start with it') }),
      },
      '/signing-keys': { get: read('signing keys and their stages', { 200: json('keys (public information only)', ref('SigningKeyList')) }) },
      '/signing-keys/rotate': { post: write('rotate the signing keys (see `gatehouse keys rotate`)', { 200: json('the keys after rotation', ref('SigningKeyList')) }) },
      '/consents': {
        get: read('remembered consents', { 200: json('consents', ref('ConsentList')) }, [
          { name: 'account', in: 'query', schema: string }, { name: 'client', in: 'query', schema: string },
        ]),
        delete: write('withdraw consents (their grants and tokens end); needs account or client', { 200: json('what was withdrawn', ref('ConsentList')) }, {
          parameters: [{ name: 'account', in: 'query', schema: string }, { name: 'client', in: 'query', schema: string }],
        }),
      },
      '/accounts': {
        get: read('list accounts, by id', { 200: json('a page', ref('AccountPage')) }, [
          { name: 'email', in: 'query', description: "the account's or a linked identity's email", schema: string },
          { name: 'provider', in: 'query', description: 'accounts with an identity from this upstream', schema: string },
          { name: 'disabled', in: 'query', description: 'only disabled accounts', schema: { enum: ['true'] } },
          { name: 'after', in: 'query', description: 'the `next` of the previous page', schema: string },
          { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 1000 } },
        ]),
      },
      '/accounts/{id}': {
        parameters: [idParam('id', 'the account id (its sub)')],
        get: read('one account: identities, consents, sessions', { 200: json('the account', ref('AccountDetails')), ...notFound }),
        delete: write('erase the account: identities, consents, sessions and tokens; the audit trail keeps a row without personal data', { 200: json('what was erased', ref('AccountDeletion')), ...notFound }),
      },
      '/accounts/{id}/disable': {
        parameters: [idParam('id', 'the account id (its sub)')],
        post: write('block sign-in and end every session, grant and token of the account at once', { 200: json('the change', ref('AccountChange')), ...notFound }),
      },
      '/accounts/{id}/enable': {
        parameters: [idParam('id', 'the account id (its sub)')],
        post: write('allow sign-in again', { 200: json('the change', ref('AccountChange')), ...notFound }),
      },
      '/webhooks': {
        get: read('webhook receivers', { 200: json('every webhook (never its secret)', ref('WebhookList')) }),
        post: write('register a receiver of audit events (Standard Webhooks); its secret is returned once', { 201: json('created', ref('WebhookWithSecret')) }, body({
          type: 'object', required: ['url', 'events'], properties: { url: string, events: { type: 'array', items: { enum: ['*', ...AUDIT_ACTIONS] } } },
        })),
      },
      '/webhooks/{id}': {
        parameters: [idParam('id', 'the webhook id')],
        get: read('one webhook with its recent deliveries and their attempts', { 200: json('the webhook', ref('WebhookDetails')), ...notFound }),
        delete: write('delete the webhook and its pending deliveries', { 204: { description: 'deleted' }, ...notFound }),
      },
      '/webhooks/{id}/enable': {
        parameters: [idParam('id', 'the webhook id')],
        post: write('send to a webhook again after its receiver answered 410 Gone (events from now on)', { 200: json('the webhook', ref('Webhook')), ...notFound }),
      },
      '/webhooks/{id}/deliveries/{deliveryId}/redeliver': {
        parameters: [idParam('id', 'the webhook id'), idParam('deliveryId', 'the delivery id (its webhook-id header)')],
        post: write('send a delivery again now (e.g. one given up), with the same webhook-id; its earlier attempts stay', {
          200: json('the delivery, due now', ref('WebhookDelivery')), ...notFound,
          409: problemResponse('the webhook is disabled, or a sender is sending the delivery now'),
        }),
      },
      '/webhooks/{id}/secret': {
        parameters: [idParam('id', 'the webhook id')],
        post: write('replace the signing secret; the new one is returned once', { 200: json('the webhook and its new secret', ref('WebhookWithSecret')), ...notFound }),
      },
      '/audit-events': {
        get: read('the audit trail, newest first', { 200: json('a page', ref('AuditPage')) }, [
          { name: 'action', in: 'query', schema: { enum: [...AUDIT_ACTIONS] } },
          { name: 'actor', in: 'query', schema: string },
          { name: 'targetType', in: 'query', schema: { enum: [...AUDIT_TARGETS] } },
          { name: 'target', in: 'query', schema: string },
          { name: 'outcome', in: 'query', schema: { enum: ['success', 'failure'] } },
          { name: 'since', in: 'query', schema: dateTime },
          { name: 'until', in: 'query', schema: dateTime },
          { name: 'before', in: 'query', description: 'the `next` of the previous page', schema: string },
          { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 1000 } },
        ]),
      },
    },
  };
}
