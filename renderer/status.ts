import { t, type MessageKey } from '../shared/i18n.js';
import type { StatusView } from '../shared/ipc.js';
import { bridgeErrorMessage, fill } from './lock-model.js';
import {
  AgentClock,
  api,
  browserLocale,
  byId,
  callAgent,
  connect,
  onLanguageSwitch,
  part,
  renderFixedTexts,
  setText,
  type PageState,
} from './page-common.js';
import type { BridgeErrorCode, BridgeResult, SekimoriApi } from './preload-api.js';
import {
  accessText,
  channelText,
  checkText,
  complianceCountsText,
  complianceResultText,
  dateTimeText,
  decisionText,
  deviceIdText,
  isBlocked,
  lockStateText,
  newestFirst,
  overallDetail,
  overallState,
  overallText,
  overallTone,
  policyText,
  ruleText,
  serialText,
  serverText,
  tierText,
  timeLeftText,
} from './status-model.js';

/**
 * The status window (DESIGN.md §9): what the agent says about this terminal, live. It renders the
 * view the agent computes (`status.get`, then every `status.changed` it pushes) and decides nothing
 * about security. Device names, serials, user and host names come from devices and the OS and may
 * be hostile: every string goes in through `textContent` or an attribute, never as markup. The only
 * timer re-renders times locally (time left, "3分前") against the agent's clock; the agent is
 * never polled.
 */

const el = {
  language: byId('language', HTMLButtonElement),
  statePanel: byId('state-panel', HTMLElement),
  state: byId('state', HTMLElement),
  stateDetail: byId('state-detail', HTMLElement),
  error: byId('error', HTMLElement),
  lockNow: byId('lock-now', HTMLButtonElement),
  requestUsb: byId('request-usb', HTMLButtonElement),
  details: byId('details', HTMLElement),
  tier: byId('tier', HTMLElement),
  policy: byId('policy', HTMLElement),
  server: byId('server', HTMLElement),
  lockState: byId('lock-state', HTMLElement),
  host: byId('host', HTMLElement),
  user: byId('user', HTMLElement),
  devicesNone: byId('devices-none', HTMLElement),
  devices: byId('devices', HTMLUListElement),
  exceptionsNone: byId('exceptions-none', HTMLElement),
  exceptions: byId('exceptions', HTMLUListElement),
  blockedNone: byId('blocked-none', HTMLElement),
  blocked: byId('blocked', HTMLOListElement),
  complianceNever: byId('compliance-never', HTMLElement),
  complianceSummary: byId('compliance-summary', HTMLElement),
  complianceOverall: byId('compliance-overall', HTMLElement),
  complianceRan: byId('compliance-ran', HTMLElement),
  complianceCounts: byId('compliance-counts', HTMLElement),
  complianceFailingHeading: byId('compliance-failing-heading', HTMLElement),
  complianceFailing: byId('compliance-failing', HTMLUListElement),
};

/** Fixed texts: element id → message key. */
const STATIC_TEXT: Readonly<Record<string, MessageKey>> = {
  'app-name': 'app.name',
  title: 'status.title',
  'lock-now': 'status.lockNow',
  'request-usb': 'status.requestUsb',
  'summary-heading': 'status.summaryHeading',
  'tier-label': 'status.tierLabel',
  'policy-label': 'status.policyLabel',
  'server-label': 'status.serverLabel',
  'lock-label': 'status.lockLabel',
  'host-label': 'status.hostLabel',
  'user-label': 'status.userLabel',
  'devices-heading': 'status.devices.heading',
  'devices-none': 'status.devices.none',
  'exceptions-heading': 'status.exceptions.heading',
  'exceptions-none': 'status.exceptions.none',
  'blocked-heading': 'status.blocked.heading',
  'blocked-none': 'status.blocked.none',
  'compliance-heading': 'status.compliance.heading',
  'compliance-never': 'status.compliance.never',
  'compliance-failing-heading': 'status.compliance.failing',
};

const state: PageState & {
  view: StatusView | null;
  error: BridgeErrorCode | null;
} = {
  locale: browserLocale(),
  connection: 'connecting',
  view: null,
  busy: false,
  error: null,
};

/** The time-left elements of the exceptions on screen, re-worded every second. */
let countdowns: { element: HTMLElement; until: string }[] = [];

/** The agent's clock: "time left" and "ago" follow the agent, not the page. */
const clock = new AgentClock();
const agentNow = (): number => clock.now();

function applyView(view: StatusView): void {
  state.view = view;
  clock.follow(view);
}

/** Which control had focus, so a rebuilt list can give it back (`data-focus` names it). */
function focusedName(): string | null {
  const active = document.activeElement;
  return active instanceof HTMLElement ? (active.dataset.focus ?? null) : null;
}
function restoreFocus(name: string | null): void {
  if (name === null || (document.activeElement instanceof HTMLElement && document.activeElement.dataset.focus === name)) return;
  for (const candidate of document.querySelectorAll<HTMLElement>('[data-focus]')) {
    if (candidate.dataset.focus === name) {
      candidate.focus();
      return;
    }
  }
}

function renderDevices(view: StatusView): void {
  const l = state.locale;
  el.devicesNone.hidden = view.devices.length > 0;
  el.devices.replaceChildren(
    ...view.devices.map((device) => {
      const item = document.createElement('li');
      item.className = 'device';
      const meta = document.createElement('p');
      meta.className = 'item-meta';
      meta.append(part('span', 'id', deviceIdText(device)), ' ', part('span', 'serial', serialText(device.serial, l)));
      const decision = part('p', 'decision', decisionText(device.decision, l));
      decision.dataset.decision = device.decision;
      item.append(part('p', 'item-name', device.name), meta, decision, part('p', 'rule', fill(t('status.device.rule', l), { rule: ruleText(device, l) })));
      if (isBlocked(device)) {
        const button = part('button', 'request-button', t('status.device.request', l));
        button.type = 'button';
        button.dataset.focus = `request:${device.key}`;
        button.setAttribute('aria-label', fill(t('status.device.requestLabel', l), { name: device.name }));
        button.addEventListener('click', () => void run((sekimori) => sekimori.app.openRequestForm(device.key)));
        item.append(button);
      }
      return item;
    }),
  );
}

function renderExceptions(view: StatusView): void {
  const l = state.locale;
  countdowns = [];
  el.exceptionsNone.hidden = view.exceptions.length > 0;
  el.exceptions.replaceChildren(
    ...view.exceptions.map((exception) => {
      const item = document.createElement('li');
      item.className = 'exception';
      const left = part('p', 'time-left', timeLeftText(exception.until, agentNow(), l));
      countdowns.push({ element: left, until: exception.until });
      const until = part('p', 'item-meta', `${fill(t('status.exception.until', l), { at: dateTimeText(exception.until, l) })} · ${accessText(exception.access, l)}`);
      item.append(part('p', 'item-name', exception.device), left, until);
      return item;
    }),
  );
}

function renderBlocked(view: StatusView): void {
  const l = state.locale;
  const notices = newestFirst(view.recentBlocked);
  el.blockedNone.hidden = notices.length > 0;
  el.blocked.replaceChildren(
    ...notices.map((notice) => {
      const item = document.createElement('li');
      item.className = 'blocked';
      const meta = document.createElement('p');
      meta.className = 'item-meta';
      meta.append(part('span', 'at', dateTimeText(notice.at, l)), ' · ', part('span', 'channel', channelText(notice.channel, l)));
      if (notice.id !== '') meta.append(' · ', part('span', 'id', notice.id));
      const decision = part('p', 'decision', decisionText(notice.decision, l));
      decision.dataset.decision = notice.decision;
      item.append(part('p', 'item-name', notice.name), meta, decision);
      return item;
    }),
  );
}

function renderCompliance(view: StatusView): void {
  const l = state.locale;
  const { compliance } = view;
  el.complianceNever.hidden = compliance.overall !== null;
  el.complianceSummary.hidden = compliance.overall === null;
  if (compliance.overall === null) return;
  setText(el.complianceOverall, fill(t('status.compliance.overall', l), { result: complianceResultText(compliance.overall, l) }));
  el.complianceOverall.dataset.result = compliance.overall;
  el.complianceRan.hidden = compliance.ranAt === null;
  setText(el.complianceRan, compliance.ranAt === null ? '' : fill(t('status.compliance.ranAt', l), { at: dateTimeText(compliance.ranAt, l) }));
  setText(el.complianceCounts, complianceCountsText(compliance, l));
  el.complianceFailingHeading.hidden = compliance.failing.length === 0;
  el.complianceFailing.hidden = compliance.failing.length === 0;
  el.complianceFailing.replaceChildren(...compliance.failing.map((id) => part('li', 'check', checkText(id, l))));
}

/** What changes with the clock alone: time left of exceptions, the last contact. */
function renderTimes(): void {
  const view = state.view;
  if (view === null) return;
  const now = agentNow();
  for (const { element, until } of countdowns) setText(element, timeLeftText(until, now, state.locale));
  setText(el.server, serverText(view.server, now, state.locale));
}

function render(): void {
  const l = state.locale;
  renderFixedTexts({ page: 'status', locale: l, title: `${t('status.title', l)} - ${t('app.name', l)}`, texts: STATIC_TEXT, language: el.language });

  const view = state.view;
  const overall = overallState(state.connection, view);
  setText(el.state, overallText(overall, l));
  setText(el.stateDetail, overallDetail(overall, view, l));
  el.statePanel.dataset.tone = overallTone(overall);
  setText(el.error, state.error === null ? '' : bridgeErrorMessage(state.error, l));

  // Buttons stay enabled while a call runs (a second click is ignored), so focus stays on them.
  const usable = api !== null && overall !== 'unavailable' && view !== null;
  el.lockNow.disabled = !usable;
  el.requestUsb.disabled = !usable;
  // A view from before the agent went away is stale: only the state line shows then.
  el.details.hidden = !usable;
  if (view === null) return;

  const focus = focusedName();
  setText(el.tier, tierText(view.tier, l));
  setText(el.policy, policyText(view.policy, l));
  setText(el.lockState, lockStateText(view.lockState, l));
  setText(el.host, view.hostname);
  setText(el.user, view.user ?? t('status.userUnknown', l));
  renderDevices(view);
  renderExceptions(view);
  renderBlocked(view);
  renderCompliance(view);
  renderTimes();
  restoreFocus(focus);
}

/** Runs one call: one at a time, failures shown (as codes, so a language switch re-words them). */
function run<T>(call: (sekimori: SekimoriApi) => Promise<BridgeResult<T>>): Promise<void> {
  return callAgent(
    state,
    render,
    call,
    () => {
      state.error = null;
    },
    (error) => {
      state.error = error.code;
    },
  );
}

el.lockNow.addEventListener('click', () => void run((sekimori) => sekimori.lock.now()));
el.requestUsb.addEventListener('click', () => void run((sekimori) => sekimori.app.openRequestForm(null)));

onLanguageSwitch(el.language, state, render, { save: true });

async function refresh(sekimori: SekimoriApi): Promise<void> {
  const status = await sekimori.status.get();
  if (status.ok) {
    applyView(status.value);
    if (state.error === 'agent-unavailable') state.error = null;
  } else if (status.error.code === 'agent-unavailable') {
    state.connection = 'unavailable';
  } else {
    state.error = status.error.code;
  }
  render();
}

async function start(): Promise<void> {
  render();
  setInterval(renderTimes, 1_000);
  const sekimori = await connect(state, render, {
    followPrefs: true,
    listen: (bridge) => {
      bridge.status.onDidChange((view) => {
        applyView(view);
        render();
      });
    },
    // Back after an outage: what changed meanwhile was not pushed to us.
    onConnected: (bridge) => void refresh(bridge),
  });
  if (sekimori) await refresh(sekimori);
}

void start();
