import type { AdminCommand, AdminDeviceDetail, AdminUsbDevice } from '../../shared/api.js';
import type { JournalEntry } from '../../shared/journal.js';
import { apiPaths } from './api-client.js';
import type { PageContext } from './app.js';
import { append, dataCell, h, replace, summary, table } from './dom.js';
import { departmentLabel, loadSelfcheck, selfcheckHeading } from './selfcheck-panel.js';
import { agoText, commandStateLabel, dataText, decisionLabel, eventFlag, fill, formatTime, lockLabel, tierLabel } from './format.js';

/**
 * One terminal: its last status and department (role admin sets or clears it), remote lock (role
 * admin, confirmed in the page), its open violations and their acknowledgements (role admin
 * acknowledges those received up to the page's load, with a comment), its
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
/** Acknowledgements shown on the page (newest first). */
const ACKS_SHOWN = 20;

/** `GET /admin/devices/:id/violations/acknowledgements` (ViolationAcksResponseSchema in server/routes/admin-violations.ts). */
interface ViolationAck {
  readonly id: number;
  readonly at: string;
  readonly actor: string;
  readonly comment: string;
  readonly fromSeq: number;
  readonly upToSeq: number;
  readonly violations: number;
}

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
  const violationsBox = h('div', { attrs: { id: 'terminal-violations-panel' } });
  const departmentBox = h('div', { attrs: { id: 'terminal-department-edit' } });
  const tierBox = h('div', { attrs: { id: 'terminal-tier-edit' } });
  const tierShown = h('span', { attrs: { id: 'terminal-tier' } }, tierLabel(detail.tier, locale));
  // The tier is the server's (an administrator's); a terminal reporting another one is shown, and flagged as tamper by the server.
  const reportedTier = detail.status === null ? null : detail.status.tier;
  if (typeof reportedTier === 'string' && reportedTier !== detail.tier) {
    append(tierShown, ' ', h('span', { class: 'bad', attrs: { id: 'terminal-tier-reported' } }, fill(text('admin.tierEdit.reported'), { tier: tierLabel(reportedTier, locale) })));
  }
  const departmentShown = h('span', { attrs: { id: 'terminal-department' } }, detail.department ?? '—');
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
        [text('admin.terminals.tier'), tierShown],
        [departmentLabel(locale), departmentShown],
        [text('admin.terminals.lock'), h('span', { attrs: { id: 'terminal-lock-state' } }, lockLabel(detail.lockState, locale))],
        [text('admin.terminals.policyVersion'), detail.policyVersion === null ? '—' : String(detail.policyVersion)],
        [text('admin.terminals.enforcement'), detail.enforcement ?? '—'],
        [text('admin.terminal.os'), `${detail.os} / ${detail.arch}`],
        [text('admin.terminal.agentVersion'), detail.agentVersion],
        [text('admin.terminal.enrolledAt'), formatTime(detail.enrolledAt, locale)],
        [text('admin.terminals.violations'), h('span', { attrs: { id: 'terminal-violations' } }, fill(text('admin.terminal.violationsValue'), { open: detail.violations, total: detail.violationsTotal }))],
        [text('admin.terminals.tamper'), String(detail.tamperFlags)],
        [text('admin.terminal.eventsHeld'), String(detail.ackSeq)],
      ]),
      actionBox,
      departmentBox,
      tierBox,
    ),
    h('h2', null, text('admin.violations.title')),
    violationsBox,
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
  if (context.canWrite) {
    renderLockButton(context, actionBox, base, loadCommands);
    renderDepartmentForm(context, departmentBox, base, departmentShown, detail.department, () => loadSelfcheck(context, detail.deviceId, detail.serverTime, selfcheckBox, loadCommands));
    renderTierForm(context, tierBox, base, detail.tier, tierShown);
  }

  await Promise.all([
    loadCommands(),
    loadViolations(context, base, detail, violationsBox),
    loadSelfcheck(context, detail.deviceId, detail.serverTime, selfcheckBox, loadCommands),
    loadChain(context, base, chainBox),
    loadUsb(context, base, usbBox),
    loadEvents(context, base, eventsBox, detail.violationsAckedSeq),
  ]);
}

/** Role admin: set or clear the terminal's department (所属); the self-inspection panel's report links follow it. */
function renderDepartmentForm(context: PageContext, box: HTMLElement, base: string, shown: HTMLElement, current: string | null, reloadSelfcheck: () => Promise<void>): void {
  const { text } = context;
  const input = h('input', { attrs: { type: 'text', id: 'department-input', maxlength: '100', value: current ?? '' } });
  const save = h('button', { attrs: { type: 'submit', id: 'department-save' } }, text('admin.department.save'));
  const clearButton = h('button', { class: 'secondary', attrs: { type: 'button', id: 'department-clear' } }, text('admin.department.clear'));
  const status = h('span', { attrs: { id: 'department-status', role: 'status' } });
  const form = h('form', { class: 'actions', attrs: { id: 'department-form' } }, h('label', null, text('admin.department.label'), ' ', input), save, clearButton, status);
  const send = async (department: string | null, button: HTMLButtonElement): Promise<void> => {
    button.disabled = true;
    try {
      const answer = await context.api.put<{ department: string | null }>(`${base}/department`, { department });
      if (!context.current()) return;
      replace(shown, answer.department ?? '—');
      input.value = answer.department ?? '';
      replace(status, answer.department === null ? text('admin.department.cleared') : fill(text('admin.department.saved'), { department: answer.department }));
      await reloadSelfcheck();
    } catch (error) {
      if (context.current()) replace(status, context.failure(error));
    } finally {
      button.disabled = false;
    }
  };
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const department = input.value.trim();
    if (department === '') {
      replace(status, h('span', { class: 'error' }, text('admin.department.required')));
      return;
    }
    void send(department, save);
  });
  clearButton.addEventListener('click', () => void send(null, clearButton));
  append(box, form);
}

/**
 * Open violations and who acknowledged which, when and why. Role admin acknowledges, with a
 * comment, the violations received up to the `ackSeq` this page was loaded with (later ones stay
 * open); the page is then rendered again with the new counts.
 */
async function loadViolations(context: PageContext, base: string, detail: AdminDeviceDetail, box: HTMLElement): Promise<void> {
  const { text, locale } = context;
  try {
    const { acknowledgements } = await context.api.get<{ acknowledgements: ViolationAck[] }>(`${base}/violations/acknowledgements`, { limit: ACKS_SHOWN });
    if (!context.current()) return;
    const parts: Node[] = [h('p', { attrs: { id: 'violations-open' }, class: detail.violations > 0 ? 'warn' : undefined }, fill(text('admin.violations.open'), { open: detail.violations, total: detail.violationsTotal }))];
    if (detail.violationsAckedSeq > 0) parts.push(h('p', { class: 'muted', attrs: { id: 'violations-acked' } }, fill(text('admin.violations.ackedUpTo'), { seq: detail.violationsAckedSeq })));
    if (context.canWrite && detail.violations > 0) parts.push(acknowledgeForm(context, base, detail.ackSeq));
    parts.push(
      acknowledgements.length === 0
        ? h('p', { class: 'muted', attrs: { id: 'violation-acks-none' } }, text('admin.violations.none'))
        : table(
            [text('admin.violations.at'), text('admin.violations.by'), text('admin.violations.commentColumn'), text('admin.violations.range'), text('admin.violations.count')],
            acknowledgements,
            (ack) =>
              h(
                'tr',
                { attrs: { 'data-ack': String(ack.id) } },
                h('td', { class: 'ack-at' }, formatTime(ack.at, locale)),
                h('td', { class: 'ack-actor' }, ack.actor),
                h('td', { class: 'ack-comment' }, ack.comment),
                h('td', { class: 'ack-range' }, `${ack.fromSeq + 1}–${ack.upToSeq}`),
                h('td', { class: 'num ack-count' }, ack.violations),
              ),
          ),
    );
    replace(box, ...parts);
  } catch (error) {
    if (context.current()) replace(box, context.failure(error));
  }
}

function acknowledgeForm(context: PageContext, base: string, upToSeq: number): HTMLFormElement {
  const { text } = context;
  const comment = h('input', { attrs: { type: 'text', id: 'violation-comment', maxlength: '500', 'aria-required': 'true' } });
  const submit = h('button', { attrs: { type: 'submit', id: 'violation-ack' } }, text('admin.violations.acknowledge'));
  const status = h('span', { attrs: { id: 'violation-status', role: 'status' } });
  const form = h(
    'form',
    { attrs: { id: 'violation-ack-form' } },
    h('p', { class: 'muted' }, fill(text('admin.violations.hint'), { seq: upToSeq })),
    h('div', { class: 'actions' }, h('label', null, text('admin.violations.comment'), ' ', comment), submit, status),
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const value = comment.value.trim();
    if (value === '') {
      replace(status, h('span', { class: 'error' }, text('admin.violations.commentRequired')));
      return;
    }
    submit.disabled = true;
    void (async () => {
      try {
        const answer = await context.api.post<{ acknowledgement: ViolationAck }>(`${base}/violations/acknowledge`, { comment: value, upToSeq });
        if (!context.current()) return;
        replace(status, fill(text('admin.violations.acknowledged'), { n: answer.acknowledgement.violations }));
        context.reload();
      } catch (error) {
        if (context.current()) replace(status, context.failure(error));
      } finally {
        submit.disabled = false;
      }
    })();
  });
  return form;
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

async function loadEvents(context: PageContext, base: string, box: HTMLElement, violationsAckedSeq: number): Promise<void> {
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
            h('td', null, flag === null ? '' : text(flag === 'tamper' ? 'admin.event.tamper' : entry.seq <= violationsAckedSeq ? 'admin.event.violationAcked' : 'admin.event.violation')),
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

/** Role admin: change the terminal's tier (which tier's policies and roaming credentials it gets). */
function renderTierForm(context: PageContext, box: HTMLElement, base: string, current: string, shown: HTMLElement): void {
  const { text, locale } = context;
  const select = h('select', { attrs: { id: 'tier-select' } }, ...(['mynumber', 'lgwan', 'internet'] as const).map((tier) => h('option', { attrs: { value: tier } }, tierLabel(tier, locale))));
  select.value = current;
  const save = h('button', { attrs: { type: 'submit', id: 'tier-save' } }, text('admin.tierEdit.save'));
  const status = h('span', { attrs: { id: 'tier-status', role: 'status' } });
  const form = h('form', { class: 'actions', attrs: { id: 'tier-form' } }, h('label', null, text('admin.tierEdit.label'), ' ', select), save, status);
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    save.disabled = true;
    void (async () => {
      try {
        const answer = await context.api.put<{ tier: string }>(`${base}/tier`, { tier: select.value });
        replace(shown, tierLabel(answer.tier, locale));
        replace(status, text('admin.tierEdit.saved'));
      } catch (failure) {
        replace(status, context.failure(failure));
      } finally {
        save.disabled = false;
      }
    })();
  });
  replace(box, form);
}
