import type { AdminSession } from '../../shared/api.js';
import { t, type Locale } from '../../shared/i18n.js';
import { ApiFailure, paths, type ApiClient } from './api-client.js';
import { h, replace } from './dom.js';
import { fill } from './format.js';

/**
 * Login (user name, password and the 6-digit code of the authenticator app, in one step: the
 * server answers one message for any wrong part) and the forced change of the initial password.
 */

export interface LoginContext {
  readonly api: ApiClient;
  readonly locale: Locale;
  readonly main: HTMLElement;
  readonly notice?: string | undefined;
  onLoggedIn(session: AdminSession): void;
}

export function renderLogin(context: LoginContext): void {
  const { api, locale, main } = context;
  const text = (key: Parameters<typeof t>[0]): string => t(key, locale);
  const user = h('input', { attrs: { id: 'login-user', type: 'text', autocomplete: 'username', maxlength: '64', required: '' } });
  const password = h('input', { attrs: { id: 'login-password', type: 'password', autocomplete: 'current-password', maxlength: '1024', required: '' } });
  const code = h('input', { attrs: { id: 'login-code', type: 'text', inputmode: 'numeric', autocomplete: 'one-time-code', maxlength: '32', required: '' } });
  const error = h('p', { class: 'error', attrs: { id: 'login-error', role: 'alert', 'aria-live': 'assertive' } });
  const submit = h('button', { attrs: { type: 'submit', id: 'login-submit' } }, text('admin.login.submit'));

  const form = h(
    'form',
    {
      class: 'stack',
      attrs: { id: 'login-form', novalidate: '' },
      on: {
        submit: (event) => {
          event.preventDefault();
          void (async () => {
            replace(error);
            submit.disabled = true;
            try {
              const session = await api.post<AdminSession>(paths.login, { user: user.value.trim(), password: password.value, code: code.value });
              api.csrfToken = session.csrfToken;
              context.onLoggedIn(session);
            } catch (failure) {
              code.value = '';
              replace(error, loginError(failure, locale));
              submit.disabled = false;
            }
          })();
        },
      },
    },
    h('label', { attrs: { for: 'login-user' } }, text('admin.login.user')),
    user,
    h('label', { attrs: { for: 'login-password' } }, text('admin.login.password')),
    password,
    h('label', { attrs: { for: 'login-code' } }, text('admin.login.code')),
    code,
    submit,
    error,
  );
  replace(
    main,
    h(
      'section',
      { class: 'panel', attrs: { 'aria-labelledby': 'login-title' } },
      h('h1', { attrs: { id: 'login-title' } }, text('admin.login.title')),
      context.notice === undefined ? null : h('p', { class: 'notice', attrs: { role: 'status' } }, context.notice),
      h('p', { class: 'muted' }, text('admin.login.hint')),
      form,
    ),
  );
  user.focus();
}

function loginError(failure: unknown, locale: Locale): string {
  if (!(failure instanceof ApiFailure)) return t('admin.error.unexpected', locale);
  switch (failure.status) {
    case 0:
      return t('admin.error.network', locale);
    case 400:
    case 401:
      return t('admin.login.failed', locale);
    case 429:
      return fill(t('admin.login.throttled', locale), { s: failure.retryAfter ?? 30 });
    default:
      return `${t('admin.error.failed', locale)} (${failure.message})`;
  }
}

export interface PasswordContext {
  readonly api: ApiClient;
  readonly locale: Locale;
  readonly main: HTMLElement;
  onChanged(session: AdminSession): void;
}

export function renderPasswordChange(context: PasswordContext): void {
  const { api, locale, main } = context;
  const text = (key: Parameters<typeof t>[0]): string => t(key, locale);
  const current = h('input', { attrs: { id: 'password-current', type: 'password', autocomplete: 'current-password', maxlength: '1024' } });
  const next = h('input', { attrs: { id: 'password-new', type: 'password', autocomplete: 'new-password', maxlength: '1024' } });
  const again = h('input', { attrs: { id: 'password-again', type: 'password', autocomplete: 'new-password', maxlength: '1024' } });
  const error = h('p', { class: 'error', attrs: { id: 'password-error', role: 'alert', 'aria-live': 'assertive' } });
  const submit = h('button', { attrs: { type: 'submit', id: 'password-submit' } }, text('admin.password.submit'));
  const form = h(
    'form',
    {
      class: 'stack',
      attrs: { id: 'password-form', novalidate: '' },
      on: {
        submit: (event) => {
          event.preventDefault();
          replace(error);
          if (next.value !== again.value) {
            replace(error, text('admin.password.mismatch'));
            return;
          }
          submit.disabled = true;
          void (async () => {
            try {
              context.onChanged(await api.post<AdminSession>(paths.password, { currentPassword: current.value, newPassword: next.value }));
            } catch (failure) {
              submit.disabled = false;
              const issue = failure instanceof ApiFailure ? failure.issues[0]?.path : undefined;
              if (issue === 'currentPassword') replace(error, text('admin.password.wrongCurrent'));
              else if (issue === 'newPassword') replace(error, `${text('admin.password.rules')} (${failure instanceof Error ? failure.message : ''})`);
              else if (failure instanceof ApiFailure && failure.status === 429) replace(error, fill(text('admin.login.throttled'), { s: failure.retryAfter ?? 30 }));
              else replace(error, `${text('admin.error.failed')} (${failure instanceof Error ? failure.message : String(failure)})`);
            }
          })();
        },
      },
    },
    h('label', { attrs: { for: 'password-current' } }, text('admin.password.current')),
    current,
    h('label', { attrs: { for: 'password-new' } }, text('admin.password.new')),
    next,
    h('label', { attrs: { for: 'password-again' } }, text('admin.password.again')),
    again,
    submit,
    error,
  );
  replace(
    main,
    h(
      'section',
      { class: 'panel', attrs: { 'aria-labelledby': 'password-title' } },
      h('h1', { attrs: { id: 'password-title' } }, text('admin.password.title')),
      h('p', null, text('admin.password.intro')),
      form,
    ),
  );
  current.focus();
}
