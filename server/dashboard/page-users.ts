import type { AdminAccount, AdminUser } from '../../shared/api.js';
import { apiPaths, paths } from './api-client.js';
import type { PageContext } from './app.js';
import { append, h, replace, table } from './dom.js';
import { fill, formatTime, tierLabel } from './format.js';

/**
 * Users: staff whose unlock factors (PIN + authenticator) are enrolled on the server (roaming),
 * per tier, with a reset (role admin, confirmed in the page: deletes the enrolment and makes every
 * terminal of the tier forget the factors; the user enrols again), and the administrator accounts
 * with their TOTP state.
 */
export async function renderUsers(context: PageContext): Promise<void> {
  const { text, main } = context;
  const staffBox = h('div', { attrs: { id: 'staff-users' } });
  const accountsBox = h('div', { attrs: { id: 'admin-accounts' } });
  replace(
    main,
    h('h1', null, text('admin.users.title')),
    h('h2', null, text('admin.users.staff')),
    h('p', { class: 'muted' }, text('admin.users.staffHint')),
    staffBox,
    h('h2', null, text('admin.users.admins')),
    accountsBox,
  );
  await Promise.all([loadStaff(context, staffBox), loadAccounts(context, accountsBox)]);
}

async function loadStaff(context: PageContext, box: HTMLElement): Promise<void> {
  const { text, locale } = context;
  try {
    const { users } = await context.api.get<{ users: AdminUser[] }>(apiPaths.adminUsers);
    if (!context.current()) return;
    const headers = [text('admin.users.user'), text('admin.terminals.tier'), text('admin.users.mfa'), text('admin.users.enrolledAt'), text('admin.users.enrolledOn')];
    if (context.canWrite) headers.push(text('admin.users.reset'));
    replace(
      box,
      users.length === 0
        ? h('p', { class: 'muted' }, text('admin.users.none'))
        : table(headers, users, (user) => {
            const row = h(
              'tr',
              { attrs: { 'data-user': user.user, 'data-tier': user.tier } },
              h('td', { class: 'user-name' }, user.user),
              h('td', null, tierLabel(user.tier, locale)),
              h('td', { class: 'ok' }, text('admin.users.mfaEnrolled')),
              h('td', null, formatTime(user.enrolledAt, locale)),
              h('td', null, h('a', { attrs: { href: `#/terminals/${encodeURIComponent(user.deviceId)}` } }, user.hostname)),
            );
            if (context.canWrite) row.appendChild(h('td', null, resetControl(context, user)));
            return row;
          }),
    );
  } catch (error) {
    if (context.current()) replace(box, context.failure(error));
  }
}

function resetControl(context: PageContext, user: AdminUser): HTMLElement {
  const { text } = context;
  const box = h('span', { class: 'actions' });
  const status = h('span', { attrs: { role: 'status' } });
  const reset = h('button', { class: 'danger user-reset', attrs: { type: 'button' } }, text('admin.users.reset'));
  const confirm = h('button', { class: 'danger user-reset-confirm', attrs: { type: 'button', hidden: '' } }, text('admin.users.resetConfirm'));
  const cancel = h('button', { class: 'secondary user-reset-cancel', attrs: { type: 'button', hidden: '' } }, text('admin.cancel'));
  const asking = (on: boolean): void => {
    reset.hidden = on;
    confirm.hidden = !on;
    cancel.hidden = !on;
    replace(status, on ? fill(text('admin.users.resetQuestion'), { user: user.user }) : '');
  };
  reset.addEventListener('click', () => asking(true));
  cancel.addEventListener('click', () => asking(false));
  confirm.addEventListener('click', () => {
    confirm.disabled = true;
    void (async () => {
      try {
        const result = await context.api.delete<{ resetCommands: number }>(`${apiPaths.adminUsers}/${encodeURIComponent(user.user)}/credentials`, { tier: user.tier });
        asking(false);
        reset.disabled = true;
        replace(status, fill(text('admin.users.resetDone'), { n: result.resetCommands }));
      } catch (error) {
        replace(status, context.failure(error));
      } finally {
        confirm.disabled = false;
      }
    })();
  });
  append(box, reset, confirm, cancel, status);
  return box;
}

async function loadAccounts(context: PageContext, box: HTMLElement): Promise<void> {
  const { text, locale } = context;
  try {
    const { accounts } = await context.api.get<{ accounts: AdminAccount[] }>(paths.accounts);
    if (!context.current()) return;
    replace(
      box,
      table(
        [text('admin.users.user'), text('admin.users.role'), text('admin.users.totp'), text('admin.users.password'), text('admin.users.lastLogin'), text('admin.users.createdAt')],
        accounts,
        (account) =>
          h(
            'tr',
            null,
            h('td', null, account.user),
            h('td', null, text(account.role === 'admin' ? 'admin.role.admin' : 'admin.role.auditor')),
            h('td', { class: account.totpConfirmed ? 'ok' : 'warn' }, text(account.totpConfirmed ? 'admin.users.totpConfirmed' : 'admin.users.totpPending')),
            h('td', { class: account.mustChangePassword ? 'warn' : undefined }, text(account.mustChangePassword ? 'admin.users.passwordInitial' : 'admin.users.passwordSet')),
            h('td', null, formatTime(account.lastLoginAt, locale)),
            h('td', null, formatTime(account.createdAt, locale)),
          ),
      ),
      h('p', { class: 'muted' }, text('admin.users.adminsHint')),
    );
  } catch (error) {
    if (context.current()) replace(box, context.failure(error));
  }
}
