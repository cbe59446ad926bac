import type { Configuration, KoaContextWithOIDC } from 'oidc-provider';
import { AbortedError, NoCodeError, ReRenderError } from 'oidc-provider/lib/helpers/re_render_errors.js';
import { render } from './views.js';

/**
 * The pages oidc-provider itself asks for (logout, device flow, errors),
 * rendered with Gatehouse's views. app.ts hands them to the provider configuration.
 * @see https://github.com/panva/node-oidc-provider/blob/main/docs/README.md#features
 */

type Features = NonNullable<Configuration['features']>;
type Logout = NonNullable<Features['rpInitiatedLogout']>;
type Device = NonNullable<Features['deviceFlow']>;

export interface ProviderViews {
  logout: Pick<Logout, 'logoutSource' | 'postLogoutSuccessSource'>;
  device: Pick<Device, 'userCodeInputSource' | 'userCodeConfirmSource' | 'successSource'>;
  renderError: NonNullable<Configuration['renderError']>;
}

/** What pages call a client. */
const displayName = (client: { clientName?: string; clientId: string } | undefined) => client?.clientName ?? client?.clientId ?? null;

/** Plain words for the error page, by OAuth error code. */
const ERROR_TITLES: Record<string, string> = {
  invalid_request: 'The request was not valid',
  invalid_client: 'Unknown application',
  invalid_redirect_uri: 'Unknown return address',
  access_denied: 'Access denied',
  session_not_found: 'Your sign-in session has expired',
};

/** What the code-entry page says after a failed attempt. */
function codeEntryError(err: unknown): string | undefined {
  if (!err) return undefined;
  if (err instanceof NoCodeError || (err instanceof ReRenderError && err.userCode)) return 'That code is not right, or it has expired. Try again.';
  if (err instanceof AbortedError) return 'Signing in on the device was cancelled.';
  return 'Something went wrong. Try again.';
}

export const providerViews: ProviderViews = {
  logout: {
    async logoutSource(ctx: KoaContextWithOIDC, form: string) {
      // `form` is oidc-provider's own markup (action and CSRF field); the view
      // places it and submits it with the person's choice.
      render(ctx, 'logout', { form, clientName: displayName(ctx.oidc.client), formId: 'op.logoutForm' });
    },
    async postLogoutSuccessSource(ctx: KoaContextWithOIDC) {
      render(ctx, 'logged-out', { clientName: displayName(ctx.oidc.client) });
    },
  },
  device: {
    async userCodeInputSource(ctx, form, _out, err) {
      const error = codeEntryError(err);
      // `form` is oidc-provider's markup: the code field and its CSRF field
      render(ctx, 'device-code', { form: form.replace('name="user_code"', 'name="user_code" aria-label="Code from your device"'), error }, err ? 400 : 200);
    },
    async userCodeConfirmSource(ctx, form, client, _deviceInfo, userCode) {
      render(ctx, 'device-confirm', { form, clientName: displayName(client), userCode });
    },
    async successSource(ctx) {
      render(ctx, 'device-success', { clientName: displayName(ctx.oidc.client) });
    },
  },
  async renderError(ctx, out) {
    const code = typeof out.error === 'string' ? out.error : 'server_error';
    render(ctx, 'error', {
      title: ERROR_TITLES[code] ?? 'Something went wrong',
      // error_description is oidc-provider's own, written for the client developer; never a stack.
      message: out.error_description ?? 'Please go back to the application and try again.',
    }, ctx.status);
  },
};
