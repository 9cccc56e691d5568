import { t, type MessageKey } from '../shared/i18n.js';
import type { LocalRequestView, PresentDevice, StatusView } from '../shared/ipc.js';
import { bridgeErrorMessage, fill } from './lock-model.js';
import {
  AgentClock,
  api,
  browserLocale,
  byId,
  callAgent,
  connect,
  onLanguageSwitch,
  onSubmit,
  part,
  queueFocus,
  renderFixedTexts,
  setText,
  type BridgeError,
  type PageState,
} from './page-common.js';
import type { BridgeErrorCode, BridgeResult, SekimoriApi } from './preload-api.js';
import {
  checkDraft,
  customBounds,
  deviceFromHash,
  formErrorText,
  purposeCounterText,
  requestableDevices,
  requestLines,
  requestStateText,
  submitErrorText,
  windowEnd,
  UNTIL_PRESETS,
  type Access,
  type FormError,
  type FormField,
  type UntilPreset,
} from './request-model.js';
import { dateTimeText, deviceIdText } from './status-model.js';

/**
 * The request form (申請, DESIGN.md §8): a staff member picks a blocked device that is plugged in,
 * says why and for how long, and the agent sends the request (`requests.submit`); below, their own
 * requests and what became of them. The device is named by the agent's key, never by what was typed.
 * Device names, serials, purposes and reasons may be hostile: every string goes in through
 * `textContent` or an attribute. The agent is never polled: the list follows `status.changed`.
 */

const el = {
  language: byId('language', HTMLButtonElement),
  notice: byId('notice', HTMLElement),
  error: byId('error', HTMLElement),
  form: byId('request-form', HTMLFormElement),
  deviceNone: byId('device-none', HTMLElement),
  devices: byId('devices', HTMLElement),
  purpose: byId('purpose', HTMLTextAreaElement),
  purposeCounter: byId('purpose-counter', HTMLElement),
  customField: byId('custom-field', HTMLElement),
  custom: byId('until-custom', HTMLInputElement),
  untilPreview: byId('until-preview', HTMLElement),
  submit: byId('submit', HTMLButtonElement),
  listHeading: byId('list-heading', HTMLElement),
  listNone: byId('list-none', HTMLElement),
  requests: byId('requests', HTMLOListElement),
};

/** Fixed texts: element id → message key. */
const STATIC_TEXT: Readonly<Record<string, MessageKey>> = {
  'app-name': 'app.name',
  title: 'request.title',
  intro: 'request.intro',
  'device-legend': 'request.device.legend',
  'device-none': 'request.device.none',
  'purpose-label': 'request.purpose.label',
  'until-legend': 'request.until.legend',
  'until-today': 'request.until.today',
  'until-day': 'request.until.day',
  'until-week': 'request.until.week',
  'until-custom-choice': 'request.until.custom',
  'until-custom-label': 'request.until.customLabel',
  'access-legend': 'request.access.legend',
  'access-read-only': 'request.access.read-only',
  'access-read-write': 'request.access.read-write',
  submit: 'request.submit',
  'list-heading': 'request.list.heading',
  'list-none': 'request.list.none',
};

/** An error on screen, kept as codes so a language switch re-words it. */
type ShownError =
  | { readonly kind: 'form'; readonly error: FormError }
  | { readonly kind: 'submit'; readonly error: BridgeError }
  | { readonly kind: 'bridge'; readonly code: BridgeErrorCode };

const state: PageState & {
  view: StatusView | null;
  requests: LocalRequestView[] | null;
  selectedKey: string | null;
  error: ShownError | null;
  sent: boolean;
  /** What the device list was built from (rebuilt only when it changes, so focus and choice stay). */
  devicesShown: string | null;
} = {
  locale: browserLocale(),
  connection: 'connecting',
  view: null,
  requests: null,
  selectedKey: deviceFromHash(location.hash),
  busy: false,
  error: null,
  sent: false,
  devicesShown: null,
};

/** The agent's clock: the window is counted on it, not on the page's. */
const clock = new AgentClock();
const agentNow = (): number => clock.now();

function applyView(view: StatusView): void {
  state.view = view;
  clock.follow(view);
}

function checkedValue(name: string): string | null {
  const checked = el.form.querySelector<HTMLInputElement>(`input[type="radio"][name="${name}"]:checked`);
  return checked?.value ?? null;
}
function preset(): UntilPreset {
  const value = checkedValue('until');
  return UNTIL_PRESETS.find((candidate) => candidate === value) ?? 'today';
}
function access(): Access {
  return checkedValue('access') === 'read-write' ? 'read-write' : 'read-only';
}

function deviceRadios(): HTMLInputElement[] {
  return [...el.devices.querySelectorAll<HTMLInputElement>('input[type="radio"][name="device"]')];
}

function renderDevices(devices: readonly PresentDevice[]): void {
  const l = state.locale;
  const shown = JSON.stringify([l, devices.map((device) => [device.key, device.name, device.vendorId, device.productId, device.serial])]);
  if (shown !== state.devicesShown) {
    state.devicesShown = shown;
    const focused = deviceRadios().find((radio) => radio === document.activeElement)?.value ?? null;
    el.devices.replaceChildren(
      ...devices.map((device, index) => {
        const label = document.createElement('label');
        label.className = 'choice device-choice';
        const radio = document.createElement('input');
        radio.type = 'radio';
        radio.name = 'device';
        radio.value = device.key;
        radio.id = `device-${index}`;
        const text = document.createElement('span');
        text.className = 'device-text';
        const meta = document.createElement('span');
        meta.className = 'device-meta';
        const serial = device.serial === '' ? t('request.device.noSerial', l) : fill(t('request.device.serial', l), { serial: device.serial });
        meta.append(part('span', 'id', deviceIdText(device)), ' · ', part('span', 'serial', serial));
        text.append(part('span', 'device-name', device.name), meta);
        label.append(radio, text);
        return label;
      }),
    );
    if (focused !== null) deviceRadios().find((radio) => radio.value === focused)?.focus();
  }
  for (const radio of deviceRadios()) radio.checked = radio.value === state.selectedKey;
  el.deviceNone.hidden = devices.length > 0 || state.view === null;
}

function renderRequests(): void {
  const l = state.locale;
  const requests = state.requests;
  el.listNone.hidden = requests === null || requests.length > 0;
  el.requests.replaceChildren(
    ...(requests ?? []).map((request) => {
      const lines = requestLines(request, l);
      const item = document.createElement('li');
      item.className = 'request';
      item.dataset.state = request.state;
      const head = document.createElement('p');
      head.className = 'request-head';
      head.append(part('span', 'request-state', requestStateText(request.state, l)), part('span', 'request-device', request.device.name));
      if (request.device.serial !== '') head.append(part('span', 'request-serial id', request.device.serial));
      item.append(head, part('p', 'request-purpose', lines.purpose), part('p', 'request-asked request-meta', lines.asked));
      if (lines.approved !== null) item.append(part('p', 'request-approved', lines.approved));
      if (lines.narrowed !== null) item.append(part('p', 'request-narrowed', lines.narrowed));
      if (lines.reason !== null) item.append(part('p', 'request-reason', lines.reason));
      item.append(part('p', 'request-submitted request-meta', lines.submitted));
      return item;
    }),
  );
}

/** What changes with the clock or the inputs: the end of the window, the counter, the custom bounds. */
function renderWindow(): void {
  const l = state.locale;
  const chosen = preset();
  const now = agentNow();
  el.customField.hidden = chosen !== 'custom';
  const bounds = customBounds(now);
  if (el.custom.min !== bounds.min) el.custom.min = bounds.min;
  if (el.custom.max !== bounds.max) el.custom.max = bounds.max;
  const end = windowEnd(chosen, now, el.custom.value);
  setText(el.untilPreview, end.ok ? fill(t('request.until.preview', l), { at: dateTimeText(end.ms, l) }) : '');
  setText(el.purposeCounter, purposeCounterText(el.purpose.value.length, l));
}

function errorText(error: ShownError): string {
  switch (error.kind) {
    case 'form':
      return formErrorText(error.error, state.locale);
    case 'submit':
      return submitErrorText(error.error, state.locale);
    case 'bridge':
      return error.code === 'agent-unavailable' ? t('request.error.agentUnavailable', state.locale) : bridgeErrorMessage(error.code, state.locale);
  }
}

function noticeText(): { text: string; problem: boolean } {
  const l = state.locale;
  if (state.connection === 'unavailable') return { text: t('request.unavailable', l), problem: true };
  if (state.view === null) return { text: t('request.connecting', l), problem: true };
  if (state.sent) return { text: t('request.sent', l), problem: false };
  return { text: '', problem: false };
}

function render(): void {
  const l = state.locale;
  renderFixedTexts({ page: 'request', locale: l, title: `${t('request.title', l)} - ${t('app.name', l)}`, texts: STATIC_TEXT, language: el.language });

  const notice = noticeText();
  setText(el.notice, notice.text);
  el.notice.dataset.kind = notice.problem ? 'problem' : 'done';
  setText(el.error, state.error === null ? '' : errorText(state.error));

  const devices = requestableDevices(state.view);
  renderDevices(devices);
  renderWindow();
  renderRequests();
  el.submit.disabled = api === null || state.connection === 'unavailable' || devices.length === 0;
  el.form.setAttribute('aria-busy', String(state.busy));
}

function focusField(field: FormField): void {
  switch (field) {
    case 'device':
      queueFocus(deviceRadios().find((radio) => radio.checked) ?? deviceRadios()[0] ?? el.purpose);
      return;
    case 'purpose':
      queueFocus(el.purpose);
      return;
    case 'until':
      queueFocus(preset() === 'custom' ? el.custom : (el.form.querySelector<HTMLInputElement>('input[name="until"]:checked') ?? el.custom));
      return;
  }
}

/** The field an agent refusal is about. */
function refusalField(reason: string | undefined): FormField | null {
  switch (reason) {
    case 'purpose-empty':
      return 'purpose';
    case 'bad-window':
      return 'until';
    case 'no-such-device':
    case 'not-blocked':
      return 'device';
    default:
      return null;
  }
}

async function submit(): Promise<void> {
  if (state.busy || !api) return;
  state.sent = false;
  const known = requestableDevices(state.view).some((device) => device.key === state.selectedKey);
  const check = checkDraft({ deviceKey: known ? state.selectedKey : null, purpose: el.purpose.value, preset: preset(), custom: el.custom.value, access: access() }, agentNow());
  if (!check.ok) {
    state.error = { kind: 'form', error: check.error };
    render();
    focusField(check.field);
    return;
  }
  await callAgent(
    state,
    render,
    (sekimori) => sekimori.requests.submit(check.draft),
    (answer) => {
      state.error = null;
      state.sent = true;
      state.requests = answer.requests;
      el.purpose.value = '';
      queueFocus(el.listHeading);
    },
    (error) => {
      // A broken bridge (`internal`) is worded as the bridge's error, as every code but a refusal.
      state.error = { kind: 'submit', error };
      if (error.code === 'agent-unavailable') state.connection = 'unavailable';
      const field = error.code === 'agent-refused' ? refusalField(error.reason ?? /^([a-z-]+):/.exec(error.message)?.[1]) : null;
      if (field !== null) focusField(field);
    },
  );
}

onSubmit(el.form, submit);
el.devices.addEventListener('change', (event) => {
  if (event.target instanceof HTMLInputElement && event.target.name === 'device') state.selectedKey = event.target.value;
});
el.form.addEventListener('input', renderWindow);
el.form.addEventListener('change', renderWindow);
window.addEventListener('hashchange', () => {
  const key = deviceFromHash(location.hash);
  if (key === null) return;
  state.selectedKey = key;
  state.sent = false;
  render();
  queueFocus(el.purpose);
});

onLanguageSwitch(el.language, state, render, { save: true });

function fail<T>(result: BridgeResult<T>): void {
  if (result.ok) return;
  if (result.error.code === 'agent-unavailable') state.connection = 'unavailable';
  else state.error = { kind: 'bridge', code: result.error.code };
}

async function refreshList(sekimori: SekimoriApi): Promise<void> {
  const list = await sekimori.requests.list();
  if (list.ok) state.requests = list.value;
  else fail(list);
  render();
}

async function refresh(sekimori: SekimoriApi): Promise<void> {
  const [status, list] = await Promise.all([sekimori.status.get(), sekimori.requests.list()]);
  if (status.ok) applyView(status.value);
  else fail(status);
  if (list.ok) state.requests = list.value;
  else fail(list);
  render();
}

async function start(): Promise<void> {
  render();
  setInterval(renderWindow, 1_000);
  const sekimori = await connect(state, render, {
    followPrefs: true,
    listen: (bridge) => {
      bridge.status.onDidChange((view) => {
        applyView(view);
        render();
        // A request's state changes with the status (approved → an exception; the agent pushes then).
        void refreshList(bridge);
      });
    },
    onConnected: (bridge) => void refresh(bridge),
  });
  if (!sekimori) return;
  await refresh(sekimori);
  if (state.selectedKey !== null && requestableDevices(state.view).some((device) => device.key === state.selectedKey)) queueFocus(el.purpose);
}

void start();
