import { t, type MessageKey } from '../shared/i18n.js';
import type { EnrolmentOffer, LockAttemptResult, LockErrorCode, LockView } from '../shared/ipc.js';
import {
  bridgeErrorMessage,
  challengeGroups,
  clockText,
  fill,
  groupSecret,
  lockErrorMessage,
  lockMode,
  offersRecovery,
  secondsUntil,
  svgDataUrl,
  type LockMode,
} from './lock-model.js';
import { AgentClock, api, byId, callAgent, connect, onLanguageSwitch, onSubmit, part, queueFocus, renderFixedTexts, setText, type PageState } from './page-common.js';
import type { BridgeErrorCode, BridgeResult, SekimoriApi } from './preload-api.js';

/**
 * The lock screen (DESIGN.md §6, §9). It renders the view the agent computes and forwards what the
 * user types; it decides nothing about security. It talks only to `window.sekimori` (the preload
 * API, or a stand-in in tests) and writes every string through `textContent` — user and host names
 * come from the OS and may be hostile. The enrolment QR arrives as SVG text and is shown as a
 * `data:` image, never parsed into the page.
 */

const HEARTBEAT_MS = 5_000;
const ACTIVITY_THROTTLE_MS = 2_000;

const el = {
  screen: byId('screen', HTMLElement),
  clockTime: byId('clock-time', HTMLElement),
  clockDate: byId('clock-date', HTMLElement),
  language: byId('language', HTMLButtonElement),
  user: byId('user', HTMLElement),
  host: byId('host', HTMLElement),
  notice: byId('notice', HTMLElement),
  offline: byId('offline', HTMLElement),
  error: byId('error', HTMLElement),
  stepPin: byId('step-pin', HTMLElement),
  pinForm: byId('pin-form', HTMLFormElement),
  pinInput: byId('pin-input', HTMLInputElement),
  pinSubmit: byId('pin-submit', HTMLButtonElement),
  stepCode: byId('step-code', HTMLElement),
  codeForm: byId('code-form', HTMLFormElement),
  codeInput: byId('code-input', HTMLInputElement),
  codeSubmit: byId('code-submit', HTMLButtonElement),
  attempts: byId('attempts', HTMLElement),
  backoff: byId('backoff', HTMLElement),
  stepEnrol: byId('step-enrol', HTMLElement),
  enrolPinForm: byId('enrol-pin-form', HTMLFormElement),
  enrolPin: byId('enrol-pin', HTMLInputElement),
  enrolPinAgain: byId('enrol-pin-again', HTMLInputElement),
  enrolPinSubmit: byId('enrol-pin-submit', HTMLButtonElement),
  enrolCodeForm: byId('enrol-code-form', HTMLFormElement),
  enrolQr: byId('enrol-qr', HTMLImageElement),
  enrolSecret: byId('enrol-secret', HTMLElement),
  enrolCode: byId('enrol-code', HTMLInputElement),
  enrolCodeSubmit: byId('enrol-code-submit', HTMLButtonElement),
  stepUnlocked: byId('step-unlocked', HTMLElement),
  recovery: byId('recovery', HTMLElement),
  recoveryOpen: byId('recovery-open', HTMLButtonElement),
  recoveryPanel: byId('recovery-panel', HTMLElement),
  challenge: byId('challenge', HTMLOListElement),
  challengeExpires: byId('challenge-expires', HTMLElement),
  recoveryForm: byId('recovery-form', HTMLFormElement),
  recoveryInput: byId('recovery-input', HTMLInputElement),
  recoverySubmit: byId('recovery-submit', HTMLButtonElement),
};

/** Fixed texts: element id → message key. */
const STATIC_TEXT: Readonly<Record<string, MessageKey>> = {
  'app-name': 'app.name',
  title: 'lock.title',
  'user-label': 'lock.userLabel',
  'host-label': 'lock.hostLabel',
  'pin-heading': 'lock.pin.heading',
  'pin-label': 'lock.pin.label',
  'pin-submit': 'lock.pin.submit',
  'code-heading': 'lock.code.heading',
  'code-label': 'lock.code.label',
  'code-submit': 'lock.code.submit',
  'enrol-heading': 'lock.enrol.heading',
  'enrol-intro': 'lock.enrol.intro',
  'enrol-pin-label': 'lock.enrol.pinLabel',
  'enrol-pin-again-label': 'lock.enrol.pinAgainLabel',
  'enrol-pin-submit': 'lock.enrol.pinSubmit',
  'enrol-scan': 'lock.enrol.scan',
  'enrol-secret-label': 'lock.enrol.secretLabel',
  'enrol-code-label': 'lock.enrol.codeLabel',
  'enrol-code-submit': 'lock.enrol.codeSubmit',
  'unlocked-text': 'lock.unlocked',
  'recovery-open': 'lock.recovery.open',
  'recovery-heading': 'lock.recovery.heading',
  'recovery-instructions': 'lock.recovery.instructions',
  'challenge-label': 'lock.recovery.challengeLabel',
  'recovery-label': 'lock.recovery.responseLabel',
  'recovery-submit': 'lock.recovery.submit',
};

/** An error on screen, kept as a code so a language switch re-words it. */
type ShownError =
  | { readonly kind: 'lock'; readonly code: LockErrorCode; readonly groups?: readonly number[] }
  | { readonly kind: 'bridge'; readonly code: BridgeErrorCode }
  | { readonly kind: 'text'; readonly key: MessageKey };

const state: PageState & {
  view: LockView | null;
  offer: NonNullable<EnrolmentOffer['offer']> | null;
  error: ShownError | null;
  renderedMode: LockMode | null;
  lastActivityMs: number;
} = {
  locale: 'ja',
  connection: 'connecting',
  view: null,
  offer: null,
  busy: false,
  error: null,
  renderedMode: null,
  lastActivityMs: 0,
};

/** The agent's clock: the screen's clock and countdowns follow it, not the page's. */
const clock = new AgentClock();
const agentNow = (): number => clock.now();

function applyView(view: LockView): void {
  state.view = view;
  clock.follow(view);
}

function errorText(error: ShownError): string {
  switch (error.kind) {
    case 'lock':
      return lockErrorMessage(error.code, state.locale, error.groups);
    case 'bridge':
      return bridgeErrorMessage(error.code, state.locale);
    case 'text':
      return t(error.key, state.locale);
  }
}

function noticeFor(mode: LockMode): string {
  const l = state.locale;
  switch (mode) {
    case 'connecting':
      return t('lock.connecting', l);
    case 'unavailable':
      return `${t('lock.unavailable', l)}${l === 'ja' ? '。' : '. '}${t('lock.unavailableHint', l)}`;
    case 'no-user':
      return t('lock.noUser', l);
    case 'locked-out':
      return t('lock.lockedOut', l);
    case 'enrol':
    case 'pin':
    case 'code':
    case 'unlocked':
      return '';
  }
}

function renderClock(): void {
  const { time, date } = clockText(agentNow(), state.locale);
  setText(el.clockTime, time);
  setText(el.clockDate, date);
}

/** The back-off countdown and what it disables; returns whether one is running. */
function renderBackoff(mode: LockMode): boolean {
  const seconds = mode === 'pin' || mode === 'code' ? secondsUntil(state.view?.retryAt ?? null, agentNow()) : 0;
  el.backoff.hidden = seconds === 0;
  setText(el.backoff, seconds === 0 ? '' : fill(t('lock.backoff', state.locale), { s: seconds }));
  el.pinSubmit.disabled = state.busy || seconds > 0;
  el.codeSubmit.disabled = state.busy || seconds > 0;
  return seconds > 0;
}

function renderChallenge(view: LockView | null): void {
  const challenge = view?.challenge ?? null;
  el.recoveryPanel.hidden = challenge === null;
  const items: HTMLLIElement[] = [];
  if (challenge !== null) {
    challengeGroups(challenge.code).forEach((digits, index) => {
      const item = document.createElement('li');
      item.append(part('span', 'group-number', fill(t('lock.recovery.group', state.locale), { n: index + 1 })), part('span', 'group-digits', digits));
      items.push(item);
    });
    const expires = Date.parse(challenge.expiresAt);
    setText(
      el.challengeExpires,
      Number.isNaN(expires) ? '' : fill(t('lock.recovery.expires', state.locale), { time: clockText(expires, state.locale).time }),
    );
  }
  el.challenge.replaceChildren(...items);
}

function render(): void {
  const l = state.locale;
  renderFixedTexts({ page: 'lock', locale: l, title: t('app.name', l), texts: STATIC_TEXT, language: el.language });
  el.enrolQr.alt = t('lock.enrol.qrAlt', l);
  renderClock();

  const view = state.view;
  const mode = lockMode(state.connection, view);
  setText(el.user, view ? (view.user ?? t('lock.userUnknown', l)) : '');
  setText(el.host, view?.hostname ?? '');
  setText(el.notice, noticeFor(mode));

  const days = view?.offlineDaysLeft ?? null;
  const showOffline = days !== null && (mode === 'pin' || mode === 'code' || mode === 'enrol' || mode === 'locked-out');
  el.offline.hidden = !showOffline;
  setText(el.offline, !showOffline ? '' : days > 0 ? fill(t('lock.offlineDays', l), { n: days }) : t('lock.offlineLastDay', l));

  if (mode !== 'enrol') state.offer = null;
  el.stepPin.hidden = mode !== 'pin';
  el.stepCode.hidden = mode !== 'code';
  el.stepEnrol.hidden = mode !== 'enrol';
  el.stepUnlocked.hidden = mode !== 'unlocked';
  el.enrolPinForm.hidden = state.offer !== null;
  el.enrolCodeForm.hidden = state.offer === null;
  if (state.offer !== null) {
    const src = svgDataUrl(state.offer.qrSvg);
    if (el.enrolQr.src !== src) el.enrolQr.src = src;
    setText(el.enrolSecret, groupSecret(state.offer.secret));
  } else if (el.enrolQr.hasAttribute('src')) {
    el.enrolQr.removeAttribute('src');
    setText(el.enrolSecret, '');
  }

  const showAttempts = (mode === 'pin' || mode === 'code') && view !== null;
  el.attempts.hidden = !showAttempts;
  setText(el.attempts, showAttempts ? fill(t('lock.attemptsLeft', l), { n: view.remainingAttempts }) : '');
  renderBackoff(mode);

  el.recovery.hidden = !offersRecovery(mode);
  renderChallenge(offersRecovery(mode) ? view : null);

  for (const button of [el.enrolPinSubmit, el.enrolCodeSubmit, el.recoveryOpen, el.recoverySubmit]) button.disabled = state.busy;
  el.screen.setAttribute('aria-busy', String(state.busy));
  setText(el.error, state.error ? errorText(state.error) : '');

  if (mode !== state.renderedMode) {
    state.renderedMode = mode;
    focusFor(mode)?.focus();
  }
}

function focusFor(mode: LockMode): HTMLElement | null {
  switch (mode) {
    case 'pin':
      return el.pinInput;
    case 'code':
      return el.codeInput;
    case 'enrol':
      return state.offer ? el.enrolCode : el.enrolPin;
    case 'locked-out':
    case 'no-user':
      return el.recoveryOpen;
    case 'connecting':
    case 'unavailable':
    case 'unlocked':
      return null;
  }
}

/** Runs one call to the agent: one at a time, the screen busy meanwhile, failures shown. */
function run<T>(call: (sekimori: SekimoriApi) => Promise<BridgeResult<T>>, onValue: (value: T) => void): Promise<void> {
  return callAgent(state, render, call, onValue, (error) => {
    state.error = { kind: 'bridge', code: error.code };
  });
}

/** Shows an attempt's outcome; on failure the input is emptied (unless `keep`) and focused again. */
function applyAttempt(result: LockAttemptResult, input: HTMLInputElement, keep = false): void {
  applyView(result.view);
  if (result.ok) {
    state.error = null;
    input.value = '';
    return;
  }
  state.error = result.error ? { kind: 'lock', code: result.error.code, ...(result.error.groups ? { groups: result.error.groups } : {}) } : null;
  if (!keep) input.value = '';
  queueFocus(input);
}

onSubmit(el.pinForm, () => {
  const secret = el.pinInput.value;
  el.pinInput.value = '';
  return run((sekimori) => sekimori.lock.submit('pin', secret), (result) => applyAttempt(result, el.pinInput));
});

onSubmit(el.codeForm, () => {
  const code = el.codeInput.value;
  el.codeInput.value = '';
  return run((sekimori) => sekimori.lock.submit('totp', code), (result) => applyAttempt(result, el.codeInput));
});

onSubmit(el.enrolPinForm, async () => {
  const pin = el.enrolPin.value;
  const again = el.enrolPinAgain.value;
  el.enrolPin.value = '';
  el.enrolPinAgain.value = '';
  if (pin !== again) {
    state.error = { kind: 'text', key: 'lock.enrol.mismatch' };
    render();
    queueFocus(el.enrolPin);
    return;
  }
  await run((sekimori) => sekimori.lock.enrolBegin(pin), (answer) => {
    applyView(answer.view);
    if (answer.ok && answer.offer) {
      state.error = null;
      state.offer = answer.offer;
      queueFocus(el.enrolCode);
    } else {
      state.error = answer.error ? { kind: 'lock', code: answer.error.code } : null;
      queueFocus(el.enrolPin);
    }
  });
});

onSubmit(el.enrolCodeForm, () => {
  const code = el.enrolCode.value;
  el.enrolCode.value = '';
  return run((sekimori) => sekimori.lock.enrolConfirm(code), (result) => {
    applyAttempt(result, el.enrolCode);
    if (result.ok) state.offer = null;
  });
});

el.recoveryOpen.addEventListener('click', () => {
  void run((sekimori) => sekimori.lock.recoveryChallenge('unlock'), (result) => {
    applyAttempt(result, el.recoveryInput, true);
    if (result.ok || result.view.challenge) queueFocus(el.recoveryInput);
  });
});

onSubmit(el.recoveryForm, () => {
  const response = el.recoveryInput.value;
  // A misheard group is corrected in place, so the typed code stays on a failure.
  return run((sekimori) => sekimori.lock.recoveryRespond(response), (result) => applyAttempt(result, el.recoveryInput, true));
});

// The lock screen switches only itself: it saves no preference.
onLanguageSwitch(el.language, state, render, { save: false });

function heartbeat(): void {
  if (api && lockMode(state.connection, state.view) !== 'unlocked') void api.lock.heartbeat();
}

function activity(): void {
  const now = Date.now();
  if (!api || now - state.lastActivityMs < ACTIVITY_THROTTLE_MS) return;
  state.lastActivityMs = now;
  void api.lock.activity();
}
document.addEventListener('keydown', activity, { capture: true });
document.addEventListener('pointerdown', activity, { capture: true });

async function refreshView(sekimori: SekimoriApi): Promise<void> {
  const view = await sekimori.lock.get();
  if (view.ok) applyView(view.value);
  else if (view.error.code === 'agent-unavailable') state.connection = 'unavailable';
  render();
}

async function start(): Promise<void> {
  render();
  let countingDown = false;
  setInterval(() => {
    renderClock();
    const running = renderBackoff(lockMode(state.connection, state.view));
    if (countingDown && !running) render();
    countingDown = running;
  }, 1_000);
  const sekimori = await connect(state, render, {
    followPrefs: false,
    listen: (bridge) => {
      bridge.lock.onDidChange((view) => {
        applyView(view);
        render();
      });
    },
    // A new connection to the agent must learn at once that the lock screen is alive.
    onConnected: (bridge) => {
      heartbeat();
      void refreshView(bridge);
    },
  });
  if (!sekimori) return;
  await refreshView(sekimori);
  heartbeat();
  setInterval(heartbeat, HEARTBEAT_MS);
}

void start();
