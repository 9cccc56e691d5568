import type { DeviceRequest } from '../../shared/requests.js';
import type { MessageKey } from '../../shared/i18n.js';
import { apiPaths } from './api-client.js';
import type { PageContext } from './app.js';
import { append, h, replace, table } from './dom.js';
import { fill, formatTime, isoToLocalInput, localInputToIso } from './format.js';

/**
 * Device requests (申請 → 承認/却下, DESIGN.md §8): tabs by state; per request the terminal, the
 * user, the device (vendor:product, name, serial — all terminal-supplied, shown as text only), the
 * purpose, the window and the access. Role admin approves (optionally ending earlier and/or
 * narrowing to read-only, with a comment), rejects (a reason is required) or revokes an approval;
 * an auditor sees the list only (the server refuses their writes anyway).
 *
 * "Expired" is not a stored state: the server shows a pending or approved request whose window has
 * ended as expired; that tab lists every request and keeps the expired ones.
 *
 * Each tab shows the newest PAGE requests; 「さらに表示」 ("show more") appends the next older page,
 * following the list answer's `next` cursor until it is null.
 */

export const REQUEST_TABS = ['pending', 'approved', 'rejected', 'revoked', 'expired'] as const;
export type RequestTab = (typeof REQUEST_TABS)[number];
/** Requests per page; "show more" fetches the next (older) page with the answer's `next` cursor. */
const PAGE = 100;

export async function renderRequests(context: PageContext, tab: RequestTab = 'pending'): Promise<void> {
  const { text, main } = context;
  const box = h('div', { attrs: { id: 'requests-list' } });
  const tabs = h(
    'div',
    { class: 'tabs', attrs: { role: 'group', 'aria-label': text('admin.requests.tabs'), id: 'requests-tabs' } },
    ...REQUEST_TABS.map((state) =>
      h(
        'button',
        {
          class: state === tab ? undefined : 'secondary',
          attrs: { type: 'button', id: `requests-tab-${state}`, 'aria-pressed': state === tab ? 'true' : 'false' },
          on: { click: () => context.navigate(`#/requests/${state}`) },
        },
        text(`admin.requests.state.${state}` as MessageKey),
      ),
    ),
  );
  const refresh = h('button', { class: 'secondary', attrs: { type: 'button', id: 'requests-refresh' }, on: { click: () => void load(context, tab, box) } }, text('admin.requests.refresh'));
  replace(main, h('h1', null, text('admin.requests.title')), h('p', { class: 'muted' }, text('admin.requests.hint')), tabs, h('div', { class: 'pager' }, refresh), box);
  await load(context, tab, box);
}

async function load(context: PageContext, tab: RequestTab, box: HTMLElement): Promise<void> {
  const { text } = context;
  const headers = [
    text('admin.requests.submittedAt'),
    text('admin.requests.terminal'),
    text('admin.requests.user'),
    text('admin.requests.device'),
    text('admin.requests.purpose'),
    text('admin.requests.window'),
    text('admin.requests.access'),
    text('admin.requests.decision'),
  ];
  if (context.canWrite) headers.push(text('admin.requests.actions'));
  const list = table(headers, [], (request: DeviceRequest) => row(context, request, box, tab));
  const body = list.tBodies[0]!;
  const none = h('p', { class: 'muted', attrs: { id: 'requests-none' } }, text('admin.requests.none'));
  const more = h('button', { class: 'secondary', attrs: { type: 'button', id: 'requests-more', hidden: '' } }, text('admin.requests.more'));
  const error = h('div');
  let before: string | undefined;
  let shown = 0;
  const page = async (): Promise<void> => {
    more.disabled = true;
    try {
      const answer = await context.api.get<{ requests: DeviceRequest[]; next: string | null }>(apiPaths.adminRequests, { state: tab === 'expired' ? undefined : tab, limit: PAGE, before });
      if (!context.current()) return;
      const rows = tab === 'expired' ? answer.requests.filter((request) => request.state === 'expired') : answer.requests;
      for (const request of rows) body.appendChild(row(context, request, box, tab));
      shown += rows.length;
      before = answer.next ?? undefined;
      list.hidden = shown === 0;
      none.hidden = shown > 0;
      more.hidden = answer.next === null;
      replace(error);
    } catch (failure) {
      if (context.current()) replace(error, context.failure(failure));
    } finally {
      more.disabled = false;
    }
  };
  more.addEventListener('click', () => void page());
  list.hidden = true;
  none.hidden = true;
  replace(box, list, none, h('div', { class: 'pager' }, more), error);
  await page();
}

function row(context: PageContext, request: DeviceRequest, box: HTMLElement, tab: RequestTab): HTMLTableRowElement {
  const { text, locale } = context;
  const device = request.device;
  const decision: Node[] = [h('span', { class: `request-state state-${request.state}` }, text(`admin.requests.state.${request.state}` as MessageKey))];
  if (request.decidedBy !== null) decision.push(h('div', { class: 'muted request-decided' }, fill(text('admin.requests.decidedBy'), { by: request.decidedBy, at: formatTime(request.decidedAt, locale) })));
  if (request.approvedUntil !== null) decision.push(h('div', { class: 'request-approved-until' }, fill(text('admin.requests.approvedUntil'), { until: formatTime(request.approvedUntil, locale) })));
  if (request.approvedAccess !== null) decision.push(h('div', { class: 'request-approved-access' }, text(`admin.requests.access.${request.approvedAccess}`)));
  if (request.reason !== null) decision.push(h('div', { class: 'request-reason' }, fill(text('admin.requests.reason'), { reason: request.reason })));
  const tr = h(
    'tr',
    { attrs: { 'data-request': request.id, 'data-state': request.state } },
    h('td', null, formatTime(request.submittedAt, locale)),
    h('td', { class: 'request-hostname' }, h('a', { attrs: { href: `#/terminals/${encodeURIComponent(request.deviceId)}` } }, request.hostname)),
    h('td', { class: 'request-user' }, request.user),
    h(
      'td',
      { class: 'request-device' },
      h('div', { class: 'usb-id' }, `${device.vendorId}:${device.productId}`),
      h('div', { class: 'usb-name' }, device.name),
      h('div', { class: device.serial === '' ? 'usb-serial muted' : 'usb-serial' }, device.serial === '' ? text('admin.requests.noSerial') : device.serial),
    ),
    h('td', { class: 'request-purpose data' }, request.purpose),
    h('td', { class: 'request-window' }, `${formatTime(request.from, locale)} – ${formatTime(request.until, locale)}`),
    h('td', { class: 'request-access' }, text(`admin.requests.access.${request.access}`)),
    h('td', null, ...decision),
  );
  if (context.canWrite) tr.appendChild(h('td', { class: 'request-actions' }, controls(context, request, () => void load(context, tab, box))));
  return tr;
}

/** Approve / reject for a pending request, revoke for an approved one; each asks in the row first. */
function controls(context: PageContext, request: DeviceRequest, reload: () => void): HTMLElement {
  const { text } = context;
  const box = h('div', { class: 'actions' });
  const status = h('p', { class: 'request-status', attrs: { role: 'status' } });
  const act = async (path: string, body: unknown, done: MessageKey, button: HTMLButtonElement): Promise<void> => {
    button.disabled = true;
    try {
      await context.api.post<DeviceRequest>(`${apiPaths.adminRequests}/${encodeURIComponent(request.id)}/${path}`, body);
      if (!context.current()) return;
      replace(status, text(done));
      reload();
    } catch (error) {
      if (context.current()) replace(status, context.failure(error));
    } finally {
      button.disabled = false;
    }
  };

  if (request.state === 'pending') {
    const approveForm = h('form', { class: 'request-approve-form', attrs: { hidden: '' } });
    const until = h('input', { class: 'approve-until', attrs: { type: 'datetime-local', max: isoToLocalInput(request.until), value: '' } });
    const readOnly = h('input', { class: 'approve-readonly', attrs: { type: 'checkbox' } });
    if (request.access === 'read-only') {
      readOnly.checked = true;
      readOnly.disabled = true;
    }
    const comment = h('input', { class: 'approve-comment', attrs: { type: 'text', maxlength: '500' } });
    const approveConfirm = h('button', { class: 'approve-confirm', attrs: { type: 'submit' } }, text('admin.requests.approveConfirm'));
    const approveCancel = h('button', { class: 'secondary', attrs: { type: 'button' } }, text('admin.cancel'));
    append(
      approveForm,
      h('label', null, text('admin.requests.approveUntil'), ' ', until),
      h('label', null, readOnly, ' ', text('admin.requests.approveReadOnly')),
      h('label', null, text('admin.requests.approveComment'), ' ', comment),
      h('span', { class: 'actions' }, approveConfirm, approveCancel),
    );
    const rejectForm = h('form', { class: 'request-reject-form', attrs: { hidden: '' } });
    const reason = h('input', { class: 'reject-reason', attrs: { type: 'text', maxlength: '500', 'aria-required': 'true' } });
    const rejectConfirm = h('button', { class: 'danger reject-confirm', attrs: { type: 'submit' } }, text('admin.requests.rejectConfirm'));
    const rejectCancel = h('button', { class: 'secondary', attrs: { type: 'button' } }, text('admin.cancel'));
    append(rejectForm, h('label', null, text('admin.requests.rejectReason'), ' ', reason), h('span', { class: 'actions' }, rejectConfirm, rejectCancel));

    const approve = h('button', { class: 'request-approve', attrs: { type: 'button' } }, text('admin.requests.approve'));
    const reject = h('button', { class: 'danger request-reject', attrs: { type: 'button' } }, text('admin.requests.reject'));
    const open = (form: HTMLFormElement | null): void => {
      approveForm.hidden = form !== approveForm;
      rejectForm.hidden = form !== rejectForm;
      approve.hidden = form !== null;
      reject.hidden = form !== null;
      replace(status);
    };
    approve.addEventListener('click', () => open(approveForm));
    reject.addEventListener('click', () => open(rejectForm));
    approveCancel.addEventListener('click', () => open(null));
    rejectCancel.addEventListener('click', () => open(null));
    approveForm.addEventListener('submit', (event) => {
      event.preventDefault();
      const body: { until?: string; access?: 'read-only'; comment?: string } = {};
      if (until.value !== '') {
        const iso = localInputToIso(until.value);
        if (iso === null) {
          replace(status, h('span', { class: 'error' }, text('admin.requests.badTime')));
          return;
        }
        body.until = iso;
      }
      if (readOnly.checked && request.access === 'read-write') body.access = 'read-only';
      if (comment.value.trim() !== '') body.comment = comment.value.trim();
      void act('approve', body, 'admin.requests.approved', approveConfirm);
    });
    rejectForm.addEventListener('submit', (event) => {
      event.preventDefault();
      if (reason.value.trim() === '') {
        replace(status, h('span', { class: 'error' }, text('admin.requests.reasonRequired')));
        return;
      }
      void act('reject', { reason: reason.value.trim() }, 'admin.requests.rejected', rejectConfirm);
    });
    append(box, approve, reject, approveForm, rejectForm, status);
  } else if (request.state === 'approved') {
    const revoke = h('button', { class: 'danger request-revoke', attrs: { type: 'button' } }, text('admin.requests.revoke'));
    const confirm = h('button', { class: 'danger request-revoke-confirm', attrs: { type: 'button', hidden: '' } }, text('admin.requests.revokeConfirm'));
    const cancel = h('button', { class: 'secondary', attrs: { type: 'button', hidden: '' } }, text('admin.cancel'));
    const asking = (on: boolean): void => {
      revoke.hidden = on;
      confirm.hidden = !on;
      cancel.hidden = !on;
      replace(status, on ? text('admin.requests.revokeQuestion') : '');
    };
    revoke.addEventListener('click', () => asking(true));
    cancel.addEventListener('click', () => asking(false));
    confirm.addEventListener('click', () => void act('revoke', undefined, 'admin.requests.revoked', confirm));
    append(box, revoke, confirm, cancel, status);
  }
  return box;
}
