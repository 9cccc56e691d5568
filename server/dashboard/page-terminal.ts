import type { AdminCommand, AdminDeviceDetail, AdminUsbDevice } from '../../shared/api.js';
import type { JournalEntry } from '../../shared/journal.js';
import { apiPaths } from './api-client.js';
import type { PageContext } from './app.js';
import { append, dataCell, h, replace, summary, table } from './dom.js';
import { departmentLabel, loadSelfcheck, selfcheckHeading } from './selfcheck-panel.js';
import { agoText, commandStateLabel, dataText, decisionLabel, eventFlag, fill, formatTime, lockLabel, tierLabel } from './format.js';

/**
 * One terminal: its last status and department, remote lock (role admin, confirmed in the page), its
 * latest self-inspection with the report links (selfcheck-panel.ts), the chain
 * re-verified by the server with tamper records, the USB devices it reported with their last
 * decision, the commands issued, and the event timeline newest first (older pages on demand).
 * Every value from the terminal is text.
 */

interface ChainReport {
  readonly count: number;
  readonly verified: boolean;
  readonly firstBadSeq: number | null;
  readonly reason: string | null;
  readonly tamper: readonly { readonly kind: string; readonly seq: number; readonly detail: Readonly<Record<string, unknown>>; readonly detectedAt: string }[];
}

const EVENTS_PAGE = 50;

export async function renderTerminal(context: PageContext, deviceId: string): Promise<void> {
  const { text, main, locale } = context;
  if (!/^dev_[0-9a-f]{32}$/.test(deviceId)) {
    replace(main, h('p', { class: 'error' }, text('admin.error.notFound')));
    return;
  }
  const base = `${apiPaths.adminDevices}/${deviceId}`;
  const detail = await context.api.get<AdminDeviceDetail>(base);
  if (!context.current()) return;

  const commandsBox = h('div', { attrs: { id: 'terminal-commands' } });
  const chainBox = h('div', { attrs: { id: 'terminal-chain' } });
  const usbBox = h('div', { attrs: { id: 'terminal-usb' } });
  const selfcheckBox = h('div', { attrs: { id: 'terminal-selfcheck' } });
  const eventsBox = h('div', { attrs: { id: 'terminal-events' } });
  const actionBox = h('div', { class: 'actions', attrs: { id: 'terminal-actions' } });
  const refresh = h('button', { class: 'secondary', attrs: { type: 'button', id: 'terminal-refresh' } }, text('admin.refresh'));
  refresh.addEventListener('click', () => context.reload());

  replace(
    main,
    h('p', null, h('a', { attrs: { href: '#/terminals' } }, text('admin.terminal.back'))),
    h('h1', { attrs: { id: 'terminal-title' } }, detail.hostname),
    h(
      'section',
      { class: 'panel', attrs: { 'aria-label': text('admin.terminal.summary') } },
      summary([
        [text('admin.terminal.deviceId'), detail.deviceId],
        [text('admin.terminals.status'), h('span', { class: detail.online ? 'ok' : 'muted' }, text(detail.online ? 'admin.terminals.online' : 'admin.terminals.offline'))],
        [text('admin.terminals.lastSeen'), `${agoText(detail.lastSeenAt, detail.serverTime, locale)} (${formatTime(detail.lastSeenAt, locale)})`],
        [text('admin.terminals.tier'), tierLabel(detail.tier, locale)],
        [departmentLabel(locale), h('span', { attrs: { id: 'terminal-department' } }, detail.department ?? '—')],
        [text('admin.terminals.lock'), h('span', { attrs: { id: 'terminal-lock-state' } }, lockLabel(detail.lockState, locale))],
        [text('admin.terminals.policyVersion'), detail.policyVersion === null ? '—' : String(detail.policyVersion)],
        [text('admin.terminals.enforcement'), detail.enforcement ?? '—'],
        [text('admin.terminal.os'), `${detail.os} / ${detail.arch}`],
        [text('admin.terminal.agentVersion'), detail.agentVersion],
        [text('admin.terminal.enrolledAt'), formatTime(detail.enrolledAt, locale)],
        [text('admin.terminals.violations'), String(detail.violations)],
        [text('admin.terminals.tamper'), String(detail.tamperFlags)],
        [text('admin.terminal.eventsHeld'), String(detail.ackSeq)],
      ]),
      actionBox,
    ),
    h('h2', null, selfcheckHeading(locale)),
    selfcheckBox,
    h('h2', null, text('admin.terminal.chain')),
    chainBox,
    h('h2', null, text('admin.terminal.usb')),
    usbBox,
    h('h2', null, text('admin.terminal.commands')),
    commandsBox,
    h('h2', null, text('admin.terminal.events')),
    eventsBox,
  );

  const loadCommands = async (): Promise<void> => {
    try {
      const { commands } = await context.api.get<{ commands: AdminCommand[] }>(`${base}/commands`, { limit: 50 });
      if (!context.current()) return;
      replace(
        commandsBox,
        commands.length === 0
          ? h('p', { class: 'muted' }, text('admin.terminal.noCommands'))
          : table(
              [text('admin.command.createdAt'), text('admin.command.type'), text('admin.command.state'), text('admin.command.by'), text('admin.command.ackedAt'), text('admin.command.detail')],
              commands,
              (command) =>
                h(
                  'tr',
                  { attrs: { 'data-command': command.id, 'data-state': command.state } },
                  h('td', null, formatTime(command.createdAt, locale)),
                  h('td', null, command.type),
                  h('td', { class: command.state === 'failed' ? 'bad' : command.state === 'succeeded' ? 'ok' : undefined }, commandStateLabel(command.state, locale)),
                  h('td', null, command.createdBy),
                  h('td', null, formatTime(command.ackedAt, locale)),
                  h('td', { class: 'data' }, command.detail ?? ''),
                ),
            ),
      );
    } catch (error) {
      if (context.current()) replace(commandsBox, context.failure(error));
    }
  };

  append(actionBox, refresh);
  if (context.canWrite) renderLockButton(context, actionBox, base, loadCommands);

  await Promise.all([loadCommands(), loadSelfcheck(context, detail.deviceId, detail.serverTime, selfcheckBox, loadCommands), loadChain(context, base, chainBox), loadUsb(context, base, usbBox), loadEvents(context, base, eventsBox)]);
}

function renderLockButton(context: PageContext, box: HTMLElement, base: string, reloadCommands: () => Promise<void>): void {
  const { text } = context;
  const status = h('span', { attrs: { id: 'lock-status', role: 'status' } });
  const lock = h('button', { class: 'danger', attrs: { type: 'button', id: 'remote-lock' } }, text('admin.terminal.lock'));
  const confirm = h('button', { class: 'danger', attrs: { type: 'button', id: 'remote-lock-confirm', hidden: '' } }, text('admin.terminal.lockConfirm'));
  const cancel = h('button', { class: 'secondary', attrs: { type: 'button', id: 'remote-lock-cancel', hidden: '' } }, text('admin.cancel'));
  const asking = (on: boolean): void => {
    lock.hidden = on;
    confirm.hidden = !on;
    cancel.hidden = !on;
    replace(status, on ? text('admin.terminal.lockQuestion') : '');
  };
  lock.addEventListener('click', () => asking(true));
  cancel.addEventListener('click', () => asking(false));
  confirm.addEventListener('click', () => {
    confirm.disabled = true;
    void (async () => {
      try {
        await context.api.post(`${base}/commands`, { type: 'lock', params: { reason: 'dashboard' } });
        asking(false);
        replace(status, text('admin.terminal.lockQueued'));
        await reloadCommands();
      } catch (error) {
        replace(status, context.failure(error));
      } finally {
        confirm.disabled = false;
      }
    })();
  });
  append(box, lock, confirm, cancel, status);
}

async function loadChain(context: PageContext, base: string, box: HTMLElement): Promise<void> {
  const { text, locale } = context;
  try {
    const report = await context.api.get<ChainReport>(`${base}/chain`);
    if (!context.current()) return;
    const verdict = report.verified
      ? h('p', { class: 'ok', attrs: { id: 'chain-verdict' } }, fill(text('admin.chain.verified'), { n: report.count }))
      : h('p', { class: 'bad', attrs: { id: 'chain-verdict' } }, fill(text('admin.chain.broken'), { seq: report.firstBadSeq ?? '?', reason: report.reason ?? '' }));
    replace(
      box,
      verdict,
      report.tamper.length === 0
        ? h('p', { class: 'muted' }, text('admin.chain.noTamper'))
        : table(
            [text('admin.chain.kind'), text('admin.chain.seq'), text('admin.chain.detectedAt'), text('admin.chain.detail')],
            report.tamper,
            (record) => h('tr', { class: 'flag-tamper' }, h('td', null, record.kind), h('td', { class: 'num' }, record.seq), h('td', null, formatTime(record.detectedAt, locale)), h('td', { class: 'data' }, dataText(record.detail))),
          ),
    );
  } catch (error) {
    if (context.current()) replace(box, context.failure(error));
  }
}

async function loadUsb(context: PageContext, base: string, box: HTMLElement): Promise<void> {
  const { text, locale } = context;
  try {
    const { devices } = await context.api.get<{ devices: AdminUsbDevice[] }>(`${base}/usb-devices`);
    if (!context.current()) return;
    replace(
      box,
      devices.length === 0
        ? h('p', { class: 'muted' }, text('admin.usb.none'))
        : table(
            [text('admin.usb.decision'), text('admin.usb.id'), text('admin.usb.name'), text('admin.usb.manufacturer'), text('admin.usb.serial'), text('admin.usb.rule'), text('admin.usb.lastTime'), text('admin.usb.count')],
            devices,
            (device) =>
              h(
                'tr',
                { class: device.lastDecision === 'device.blocked' ? 'flag-violation' : undefined },
                h('td', null, decisionLabel(device.lastDecision, locale)),
                h('td', null, device.usbId),
                h('td', { class: 'usb-name' }, device.name),
                h('td', null, device.manufacturer),
                h('td', null, device.serial),
                h('td', { class: 'data' }, device.rule === null ? '' : dataText(device.rule)),
                h('td', null, formatTime(device.lastTime, locale)),
                h('td', { class: 'num' }, device.decisions),
              ),
          ),
    );
  } catch (error) {
    if (context.current()) replace(box, context.failure(error));
  }
}

async function loadEvents(context: PageContext, base: string, box: HTMLElement): Promise<void> {
  const { text, locale } = context;
  const body = h('tbody');
  const more = h('button', { class: 'secondary', attrs: { type: 'button', id: 'events-older' } }, text('admin.terminal.olderEvents'));
  let before = Number.MAX_SAFE_INTEGER;
  const page = async (): Promise<void> => {
    more.disabled = true;
    try {
      const { events } = await context.api.get<{ events: JournalEntry[] }>(`${base}/events`, { before, limit: EVENTS_PAGE });
      if (!context.current()) return;
      for (const entry of events) {
        const flag = eventFlag(entry.type);
        body.appendChild(
          h(
            'tr',
            { class: flag === null ? undefined : `flag-${flag}`, attrs: { 'data-seq': String(entry.seq) } },
            h('td', { class: 'num' }, entry.seq),
            h('td', null, `${formatTime(entry.time, locale)} (${entry.tz})`),
            h('td', null, entry.type),
            h('td', null, flag === null ? '' : text(flag === 'tamper' ? 'admin.event.tamper' : 'admin.event.violation')),
            dataCell(dataText(entry.data)),
          ),
        );
      }
      const last = events.at(-1);
      if (last !== undefined) before = last.seq;
      more.hidden = events.length < EVENTS_PAGE || before <= 1;
    } catch (error) {
      if (context.current()) box.appendChild(context.failure(error));
    } finally {
      more.disabled = false;
    }
  };
  more.addEventListener('click', () => void page());
  replace(
    box,
    h(
      'table',
      null,
      h('thead', null, h('tr', null, ...[text('admin.event.seq'), text('admin.event.time'), text('admin.event.type'), text('admin.event.flag'), text('admin.event.data')].map((label) => h('th', { attrs: { scope: 'col' } }, label)))),
      body,
    ),
    h('div', { class: 'pager' }, more),
  );
  await page();
}
