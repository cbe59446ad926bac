/**
 * The conformance harness in one import: see server.ts (the OP under test and its
 * clients), browser.ts (a person in Chromium), protocol.ts (raw HTTP steps and ID
 * token validation) and flows.ts (the suite's standard code flow).
 */
export * from './server.js';
export * from './browser.js';
export * from './protocol.js';
export * from './flows.js';
