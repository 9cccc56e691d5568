import type { AdminAction } from '../../shared/api.js';
import { apiPaths } from './api-client.js';
import type { PageContext } from './app.js';
import { dataCell, h, replace } from './dom.js';
import { dataText, formatTime } from './format.js';

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
