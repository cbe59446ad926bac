/**
 * oidc-provider's device-flow errors (not re-exported by the package; the
 * module has no types). Gatehouse recognises them by class at one place,
 * interactions/provider-views.ts.
 * @see https://github.com/panva/node-oidc-provider/blob/main/lib/helpers/re_render_errors.js
 */
declare module 'oidc-provider/lib/helpers/re_render_errors.js' {
  export class ReRenderError extends Error {
    userCode?: string;
  }
  export class NotFoundError extends ReRenderError {}
  export class ExpiredError extends ReRenderError {}
  export class AbortedError extends ReRenderError {}
  export class AlreadyUsedError extends ReRenderError {}
  export class NoCodeError extends ReRenderError {}
}
