import type { AdminAction } from '../../shared/api.js';
import { AUDIT_EVENTS_CSV, apiPaths, withQuery } from './api-client.js';
import type { PageContext } from './app.js';
import { dataCell, h, replace } from './dom.js';
import { dataText, formatTime, jstDate } from './format.js';

/** The administrators' audit trail, newest first, 100 a page ("older" pages back by id). */
const PAGE = 100;

export async function renderActions(context: PageContext): Promise<void> {
  const { text, main, locale } = context;
  const body = h('tbody', { attrs: { id: 'actions-body' } });
  const more = h('button', { class: 'secondary', attrs: { type: 'button', id: 'actions-older' } }, text('admin.actions.older'));
  const error = h('div');
  let before: number | undefined;
  const page = async (): Promise<void> => {
    more.disabled = true;
    try {
      const { actions } = await context.api.get<{ actions: AdminAction[] }>(apiPaths.adminActions, { limit: PAGE, before });
      if (!context.current()) return;
      for (const action of actions) {
        body.appendChild(
          h(
            'tr',
            { attrs: { 'data-action': action.action } },
            h('td', null, formatTime(action.at, locale)),
            h('td', { class: 'actor' }, action.actor),
            h('td', null, action.action),
            h('td', null, action.deviceId === null ? '' : h('a', { attrs: { href: `#/terminals/${encodeURIComponent(action.deviceId)}` } }, action.deviceId)),
            h('td', null, action.user ?? ''),
            dataCell(dataText(action.detail)),
          ),
        );
      }
      before = actions.at(-1)?.id ?? before;
      more.hidden = actions.length < PAGE;
    } catch (failure) {
      if (context.current()) replace(error, context.failure(failure));
    } finally {
      more.disabled = false;
    }
  };
  more.addEventListener('click', () => void page());
  replace(
    main,
    auditExport(context),
    h('h1', null, text('admin.actions.title')),
    h(
      'table',
      null,
      h(
        'thead',
        null,
        h('tr', null, ...[text('admin.actions.at'), text('admin.actions.actor'), text('admin.actions.action'), text('admin.actions.device'), text('admin.actions.user'), text('admin.actions.detail')].map((label) => h('th', { attrs: { scope: 'col' } }, label))),
      ),
      body,
    ),
    h('div', { class: 'pager' }, more),
    error,
  );
  await page();
}

/**
 * The audit export (CSV of the terminals' events for a period of JST dates, end day included,
 * optionally only the terminals of one department): a plain same-origin link, so the browser
 * downloads it with the session cookie. Read access.
 */
function auditExport(context: PageContext): HTMLElement {
  const { text } = context;
  const today = jstDate(Date.now());
  const from = h('input', { attrs: { type: 'date', id: 'audit-from', value: `${today.slice(0, 8)}01`, required: '' } });
  const to = h('input', { attrs: { type: 'date', id: 'audit-to', value: today, required: '' } });
  const department = h('input', { attrs: { type: 'text', id: 'audit-department', maxlength: '100' } });
  const link = h('a', { class: 'button', attrs: { id: 'audit-csv', download: '' } }, text('admin.audit.download'));
  const update = (): void => {
    link.setAttribute('href', withQuery(AUDIT_EVENTS_CSV, { from: from.value, to: to.value, department: department.value.trim() }));
  };
  from.addEventListener('change', update);
  to.addEventListener('change', update);
  department.addEventListener('input', update);
  update();
  return h(
    'section',
    { class: 'panel', attrs: { id: 'audit-export' } },
    h('h2', null, text('admin.audit.title')),
    h('p', { class: 'muted' }, text('admin.audit.hint')),
    h('div', { class: 'actions' }, h('label', null, text('admin.audit.from'), ' ', from), h('label', null, text('admin.audit.to'), ' ', to), h('label', null, text('admin.audit.department'), ' ', department), link),
  );
}
