import { pickLocale, t, type Locale, type MessageKey } from '../shared/i18n.js';
import type { AgentConnectionState, BridgeResult, SekimoriApi } from './preload-api.js';

/**
 * What the lock screen, the status window and the request form do alike: reach `window.sekimori`,
 * find their elements, write text only through `textContent`, follow the agent's clock, word their
 * fixed texts and the language switch, follow the connection (and the app's language), and run one
 * call to the agent at a time. The DOM only: the pages' decisions live in the `*-model.ts` files.
 */

/** The preload API, or null when the page runs without it (the page then says the agent is unreachable). */
export const api: SekimoriApi | null = (window as unknown as { sekimori?: SekimoriApi }).sekimori ?? null;

/** What every page keeps in its state. */
export interface PageState {
  locale: Locale;
  connection: AgentConnectionState;
  /** A call to the agent is running (`callAgent`). */
  busy: boolean;
}

/** A failed call as the bridge reports it. */
export type BridgeError = Extract<BridgeResult<unknown>, { ok: false }>['error'];

const PAGE_FILE = location.pathname.slice(location.pathname.lastIndexOf('/') + 1);

/** The page's element `#id`, which must be a `type` (the page's HTML and script ship together). */
export function byId<T extends HTMLElement>(id: string, type: { new (): T; prototype: T }): T {
  const found = document.getElementById(id);
  if (!(found instanceof type)) throw new Error(`${PAGE_FILE} has no #${id}`);
  return found;
}

export function setText(element: HTMLElement, text: string): void {
  if (element.textContent !== text) element.textContent = text;
}

/** A child element holding `text` (as text). */
export function part<K extends keyof HTMLElementTagNameMap>(tag: K, className: string, text: string): HTMLElementTagNameMap[K] {
  const element = document.createElement(tag);
  element.className = className;
  element.textContent = text;
  return element;
}

/** Focus after the next render (the target may only become visible then). */
export function queueFocus(target: HTMLElement): void {
  queueMicrotask(() => {
    if (!target.closest('[hidden]')) target.focus();
  });
}

/** Handles a form's submit in the page (it is never sent anywhere). */
export function onSubmit(form: HTMLFormElement, handler: () => Promise<void>): void {
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    void handler();
  });
}

/** The agent's clock as the page sees it: the last view's `now` plus the page's time since. */
export class AgentClock {
  /** Agent clock minus page clock, ms. */
  private offsetMs = 0;

  /** Takes the agent's time from a view; an unreadable `now` keeps the last offset. */
  follow(view: { readonly now: string }): void {
    const agentMs = Date.parse(view.now);
    if (!Number.isNaN(agentMs)) this.offsetMs = agentMs - Date.now();
  }

  now(): number {
    return Date.now() + this.offsetMs;
  }
}

/** The browser's language, until the app's preference is known. */
export function browserLocale(): Locale {
  return pickLocale(navigator.language);
}

const otherLocale = (locale: Locale): Locale => (locale === 'ja' ? 'en' : 'ja');

/**
 * The document's language and title, the fixed texts (element id → message key) and the language
 * switch, which names the other language in that language (`<page>.languageSwitch`).
 */
export function renderFixedTexts(options: {
  page: 'lock' | 'status' | 'request';
  locale: Locale;
  title: string;
  texts: Readonly<Record<string, MessageKey>>;
  language: HTMLButtonElement;
}): void {
  const { page, locale: l, language } = options;
  document.documentElement.lang = l;
  document.title = options.title;
  for (const [id, key] of Object.entries(options.texts)) {
    const element = document.getElementById(id);
    if (element) setText(element, t(key, l));
  }
  setText(language, t(`${page}.languageSwitch`, l));
  language.lang = otherLocale(l);
  language.setAttribute('aria-label', t(`${page}.languageSwitchLabel`, l));
}

/**
 * The language button switches the page at once. With `save`, the app's preference too: other
 * windows follow through `onDidChangePrefs`; a failure here leaves this window switched.
 */
export function onLanguageSwitch(button: HTMLButtonElement, state: PageState, render: () => void, options: { save: boolean }): void {
  button.addEventListener('click', () => {
    state.locale = otherLocale(state.locale);
    render();
    if (options.save) void api?.app.setLanguage(state.locale).catch(() => undefined);
  });
}

/**
 * Connects the page to `window.sekimori`; without it, the agent is unreachable and null is the
 * answer. Else `listen` subscribes to the page's pushes, the connection is followed (`onConnected`
 * each time it is back: what changed meanwhile was not pushed), with `followPrefs` the app's language
 * too (`app.prefs()`, then `app.onDidChangePrefs`), and it resolves once the first connection state
 * (and language) are known, before anything is fetched.
 */
export async function connect(
  state: PageState,
  render: () => void,
  options: { followPrefs: boolean; listen: (sekimori: SekimoriApi) => void; onConnected: (sekimori: SekimoriApi) => void },
): Promise<SekimoriApi | null> {
  if (!api) {
    state.connection = 'unavailable';
    render();
    return null;
  }
  const sekimori = api;
  options.listen(sekimori);
  sekimori.agent.onDidChangeConnection((connection) => {
    state.connection = connection;
    render();
    if (connection === 'connected') options.onConnected(sekimori);
  });
  if (options.followPrefs) {
    sekimori.app.onDidChangePrefs((prefs) => {
      state.locale = pickLocale(prefs.language);
      render();
    });
  }
  const [prefs, connection] = await Promise.all([options.followPrefs ? sekimori.app.prefs() : null, sekimori.agent.connection()]);
  if (prefs?.ok) state.locale = pickLocale(prefs.value.language);
  state.connection = connection.ok ? connection.value : 'unavailable';
  return sekimori;
}

/**
 * Runs one call to the agent: one at a time (a call while another runs is dropped), `state.busy`
 * meanwhile, rendered before and after. A failure reaches `onError` as the bridge's error:
 * `agent-unavailable` without `window.sekimori`, `internal` when the bridge itself broke (the
 * preload answers with values; a rejection means it broke).
 */
export async function callAgent<T>(
  state: PageState,
  render: () => void,
  call: (sekimori: SekimoriApi) => Promise<BridgeResult<T>>,
  onValue: (value: T) => void,
  onError: (error: BridgeError) => void,
): Promise<void> {
  if (state.busy) return;
  if (!api) {
    onError({ code: 'agent-unavailable', message: 'no preload API' });
    render();
    return;
  }
  state.busy = true;
  render();
  try {
    const result = await call(api);
    if (result.ok) onValue(result.value);
    else onError(result.error);
  } catch {
    onError({ code: 'internal', message: 'the bridge failed' });
  } finally {
    state.busy = false;
    render();
  }
}
