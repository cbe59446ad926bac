import type { Configuration, KoaContextWithOIDC } from 'oidc-provider';
import { AbortedError, NoCodeError, ReRenderError } from 'oidc-provider/lib/helpers/re_render_errors.js';
import { render } from '../web/pages.js';

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

/** What the error page says, by OAuth error code: what happened and what the person can do. */
interface ErrorWords {
  title: string;
  message: string;
  advice: string;
  /** show oidc-provider's error_description, labelled for the app's developer */
  detail?: boolean;
}

const TELL_THE_OWNER = 'Go back to the app and tell its owner; there is nothing you can fix from here.';

const ERROR_WORDS: Record<string, ErrorWords> = {
  invalid_client: {
    title: 'Unknown application',
    message: 'The app that sent you here is not registered with this sign-in service, so you cannot sign in to it from here.',
    advice: TELL_THE_OWNER,
  },
  invalid_redirect_uri: {
    title: 'Unknown return address',
    message: 'The app that sent you here asked to send you back to an address that is not registered for it. Signing in stopped here to protect you.',
    advice: TELL_THE_OWNER,
  },
  invalid_request: {
    title: 'The app sent a request that is not valid',
    message: 'The app that sent you here asked for something this sign-in service cannot do.',
    advice: 'Go back to the app and try again. If it keeps happening, tell the app\'s owner.',
    detail: true,
  },
  access_denied: {
    title: 'Access denied',
    message: 'Signing in to the app was not allowed.',
    advice: 'Go back to the app and try again.',
  },
  session_not_found: {
    title: 'Your sign-in session has expired',
    message: 'It took too long, or it was started in another browser or tab.',
    advice: 'Go back to the app and start signing in again.',
  },
};

const SOMETHING_WENT_WRONG: ErrorWords = {
  title: 'Something went wrong',
  message: 'Signing in could not go on.',
  advice: 'Go back to the app and try again. If it keeps happening, contact whoever runs this server.',
  detail: true,
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
    const words = ERROR_WORDS[code] ?? SOMETHING_WENT_WRONG;
    // error_description is oidc-provider's own, written for the app's developer; never a stack.
    const detail = words.detail && code !== 'server_error' && typeof out.error_description === 'string' ? out.error_description : undefined;
    render(ctx, 'error', { title: words.title, message: words.message, advice: words.advice, detail }, ctx.status);
  },
};
