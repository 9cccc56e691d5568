import type { AdminTerminal, AdminTerminalsResponse } from '../../shared/api.js';
import { paths } from './api-client.js';
import type { PageContext } from './app.js';
import { h, replace, table } from './dom.js';
import { agoText, fill, formatTime, lockLabel, tierLabel } from './format.js';

/**
 * The terminal list: online/offline and last contact, tier, lock state, policy version,
 * violations and tamper flags; filters (text, tier, online), sort (host name or last contact, both
 * directions) and keyset paging (the server's cursor; "previous" goes back through the cursors
 * already seen). The filters stay while the dashboard is open.
 */

interface ListState {
  q: string;
  tier: string;
  status: string;
  sort: string;
  dir: string;
  /** Cursors of the pages before the current one (undefined = the first page). */
  cursors: (string | undefined)[];
}

const PAGE_SIZE = 50;
const state: ListState = { q: '', tier: '', status: '', sort: 'hostname', dir: 'asc', cursors: [undefined] };

export async function renderTerminals(context: PageContext): Promise<void> {
  const { text, main } = context;
  const counts = h('p', { class: 'muted', attrs: { id: 'terminal-counts' } });
  const results = h('div', { attrs: { id: 'terminal-results' } });

  const q = h('input', { attrs: { id: 'filter-q', type: 'search', maxlength: '255', value: state.q } });
  const tier = select('filter-tier', state.tier, [
    ['', text('admin.filter.all')],
    ['mynumber', text('admin.tier.mynumber')],
    ['lgwan', text('admin.tier.lgwan')],
    ['internet', text('admin.tier.internet')],
  ]);
  const status = select('filter-status', state.status, [
    ['', text('admin.filter.all')],
    ['online', text('admin.terminals.online')],
    ['offline', text('admin.terminals.offline')],
  ]);
  const sort = select('filter-sort', state.sort, [
    ['hostname', text('admin.terminals.sortHostname')],
    ['lastSeen', text('admin.terminals.sortLastSeen')],
  ]);
  const dir = select('filter-dir', state.dir, [
    ['asc', text('admin.filter.ascending')],
    ['desc', text('admin.filter.descending')],
  ]);

  const load = async (): Promise<void> => {
    const after = state.cursors.at(-1);
    let page: AdminTerminalsResponse;
    try {
      page = await context.api.get<AdminTerminalsResponse>(paths.terminals, {
        q: state.q.trim(),
        tier: state.tier,
        status: state.status,
        sort: state.sort,
        dir: state.dir,
        after,
        limit: PAGE_SIZE,
      });
    } catch (error) {
      if (context.current()) replace(results, context.failure(error));
      return;
    }
    if (!context.current()) return;
    replace(counts, fill(text('admin.terminals.counts'), { total: page.counts.total, online: page.counts.online }));
    const pageNumber = state.cursors.length;
    const previous = h('button', { class: 'secondary', attrs: { type: 'button', id: 'page-previous' } }, text('admin.page.previous'));
    previous.disabled = pageNumber <= 1;
    previous.addEventListener('click', () => {
      state.cursors.pop();
      void load();
    });
    const next = h('button', { class: 'secondary', attrs: { type: 'button', id: 'page-next' } }, text('admin.page.next'));
    next.disabled = page.nextCursor === null;
    next.addEventListener('click', () => {
      if (page.nextCursor === null) return;
      state.cursors.push(page.nextCursor);
      void load();
    });
    replace(
      results,
      page.terminals.length === 0
        ? h('p', { class: 'muted' }, text('admin.terminals.none'))
        : table(
            [
              text('admin.terminals.hostname'),
              text('admin.terminals.status'),
              text('admin.terminals.lastSeen'),
              text('admin.terminals.tier'),
              text('admin.terminals.lock'),
              text('admin.terminals.policyVersion'),
              text('admin.terminals.enforcement'),
              text('admin.terminals.violations'),
              text('admin.terminals.tamper'),
            ],
            page.terminals,
            (terminal) => terminalRow(context, terminal, page.serverTime),
          ),
      h('div', { class: 'pager' }, previous, h('span', { attrs: { id: 'page-number' } }, fill(text('admin.page.number'), { n: pageNumber })), next),
    );
  };

  const form = h(
    'form',
    {
      class: 'filters',
      attrs: { id: 'terminal-filters', role: 'search', novalidate: '' },
      on: {
        submit: (event) => {
          event.preventDefault();
          state.q = q.value;
          state.tier = tier.value;
          state.status = status.value;
          state.sort = sort.value;
          state.dir = dir.value;
          state.cursors = [undefined];
          void load();
        },
      },
    },
    labelled('filter-q', text('admin.filter.text'), q),
    labelled('filter-tier', text('admin.terminals.tier'), tier),
    labelled('filter-status', text('admin.terminals.status'), status),
    labelled('filter-sort', text('admin.filter.sort'), sort),
    labelled('filter-dir', text('admin.filter.direction'), dir),
    h('button', { attrs: { type: 'submit', id: 'filter-apply' } }, text('admin.filter.apply')),
  );
  for (const control of [tier, status, sort, dir]) control.addEventListener('change', () => form.requestSubmit());

  replace(main, h('h1', null, text('admin.terminals.title')), counts, form, results);
  await load();
}

function terminalRow(context: PageContext, terminal: AdminTerminal, now: string): HTMLTableRowElement {
  const { locale, text } = context;
  const link = h('a', { attrs: { href: `#/terminals/${encodeURIComponent(terminal.deviceId)}`, class: 'terminal-link' } }, terminal.hostname);
  return h(
    'tr',
    { attrs: { 'data-device': terminal.deviceId } },
    h('td', null, link),
    h('td', null, h('span', { class: terminal.online ? 'ok' : 'muted' }, text(terminal.online ? 'admin.terminals.online' : 'admin.terminals.offline'))),
    h('td', { attrs: { title: formatTime(terminal.lastSeenAt, locale) } }, agoText(terminal.lastSeenAt, now, locale)),
    h('td', null, tierLabel(terminal.tier, locale)),
    h('td', { class: terminal.lockState === 'locked' ? 'warn' : undefined }, lockLabel(terminal.lockState, locale)),
    h('td', { class: 'num' }, terminal.policyVersion === null ? '—' : terminal.policyVersion),
    h('td', { class: terminal.enforcement === 'unenforced' ? 'bad' : undefined }, terminal.enforcement ?? '—'),
    h('td', { class: `num${terminal.violations > 0 ? ' warn' : ''}` }, terminal.violations),
    h('td', { class: `num${terminal.tamperFlags > 0 ? ' bad' : ''}` }, terminal.tamperFlags),
  );
}

function select(id: string, value: string, options: readonly (readonly [string, string])[]): HTMLSelectElement {
  const element = h('select', { attrs: { id } }, ...options.map(([optionValue, label]) => h('option', { attrs: { value: optionValue } }, label)));
  element.value = value;
  return element;
}

function labelled(id: string, label: string, control: HTMLElement): HTMLLabelElement {
  return h('label', { attrs: { for: id } }, label, control);
}
