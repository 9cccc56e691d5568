import type { AdminSession } from '../../shared/api.js';
import { DEFAULT_LOCALE, t, type Locale, type MessageKey } from '../../shared/i18n.js';
import { ApiClient, ApiFailure, paths } from './api-client.js';
import { append, h, replace } from './dom.js';
import { fill } from './format.js';
import { renderActions } from './page-actions.js';
import { renderLogin, renderPasswordChange } from './page-login.js';
import { renderPolicies } from './page-policies.js';
import { renderRecovery } from './page-recovery.js';
import { REQUEST_TABS, renderRequests, type RequestTab } from './page-requests.js';
import { renderTerminal } from './page-terminal.js';
import { renderTerminals } from './page-terminals.js';
import { renderUsers } from './page-users.js';

/**
 * The dashboard's shell (DESIGN.md §8): session, language, navigation and a hash router
 * (`#/terminals`, `#/terminals/ID`, `#/users`, `#/requests[/STATE]`, `#/recovery`, `#/actions`, `#/policies`). Japanese
 * by default; the button switches to English and back (remembered in localStorage). Pages render
 * with `dom.ts` (text only). Role `auditor` sees no write buttons and no recovery page; the
 * server refuses those calls anyway.
 */

/** What a page gets. */
export interface PageContext {
  readonly locale: Locale;
  readonly session: AdminSession;
  readonly api: ApiClient;
  readonly main: HTMLElement;
  /** Role admin: may act (lock, reset, publish, recover). */
  readonly canWrite: boolean;
  readonly text: (key: MessageKey) => string;
  readonly navigate: (hash: string) => void;
  /** Renders the current page again (fresh data). */
  readonly reload: () => void;
  /** False once another page replaced this one (an async render must stop writing). */
  readonly current: () => boolean;
  /** An API failure (or anything thrown) as a paragraph for people. */
  readonly failure: (error: unknown) => HTMLElement;
}

const LOCALE_KEY = 'sekimori.dashboard.locale';

interface Route {
  readonly name: 'terminals' | 'terminal' | 'users' | 'requests' | 'recovery' | 'actions' | 'policies';
  readonly param: string | null;
}

const NAV: readonly { readonly name: Route['name']; readonly key: MessageKey; readonly writeOnly?: boolean }[] = [
  { name: 'terminals', key: 'admin.nav.terminals' },
  { name: 'users', key: 'admin.nav.users' },
  { name: 'requests', key: 'admin.nav.requestsPage' },
  { name: 'recovery', key: 'admin.nav.recovery', writeOnly: true },
  { name: 'policies', key: 'admin.nav.policies' },
  { name: 'actions', key: 'admin.nav.actions' },
];

class Dashboard {
  private locale: Locale = readLocale();
  private session: AdminSession | null = null;
  private readonly api = new ApiClient();
  private generation = 0;
  private readonly main = byId('main');
  private readonly nav = byId('nav');
  private readonly banner = byId('banner');

  constructor() {
    this.api.onUnauthorized = () => {
      if (this.session === null) return;
      this.session = null;
      this.show(null, this.text('admin.login.expired'));
    };
    byId('language').addEventListener('click', () => {
      this.locale = this.locale === 'ja' ? 'en' : 'ja';
      try {
        localStorage.setItem(LOCALE_KEY, this.locale);
      } catch {
        // Storage refused (private mode): the choice lasts until the page reloads.
      }
      this.show(this.session);
    });
    byId('logout').addEventListener('click', () => void this.logout());
    window.addEventListener('hashchange', () => this.show(this.session));
  }

  async start(): Promise<void> {
    this.chrome();
    try {
      const session = await this.api.get<AdminSession>(paths.session);
      this.api.csrfToken = session.csrfToken;
      this.session = session;
    } catch (error) {
      if (!(error instanceof ApiFailure) || error.status !== 401) this.showBanner(this.describe(error));
    }
    this.show(this.session);
  }

  private text(key: MessageKey): string {
    return t(key, this.locale);
  }

  /** Header, language button, navigation for the current route. */
  private chrome(route: Route | null = null): void {
    document.documentElement.lang = this.locale;
    document.title = this.text('admin.title');
    replace(byId('brand'), this.text('admin.brand'));
    const language = byId('language');
    replace(language, this.text('admin.languageSwitch'));
    language.setAttribute('aria-label', this.text('admin.languageSwitchLabel'));
    this.nav.setAttribute('aria-label', this.text('admin.nav.label'));
    const session = this.session;
    const loggedIn = session !== null && !session.mustChangePassword;
    this.nav.hidden = !loggedIn;
    byId('logout').hidden = session === null || session.via !== 'session';
    replace(byId('logout'), this.text('admin.logout'));
    replace(byId('who'), session === null ? '' : fill(this.text('admin.who'), { user: session.user, role: this.text(session.role === 'admin' ? 'admin.role.admin' : 'admin.role.auditor') }));
    if (!loggedIn) {
      replace(this.nav);
      return;
    }
    const items: Node[] = [];
    for (const item of NAV) {
      if (item.writeOnly === true && session.role !== 'admin') continue;
      const active = route !== null && (route.name === item.name || (route.name === 'terminal' && item.name === 'terminals'));
      items.push(h('a', { attrs: { href: `#/${item.name}`, id: `nav-${item.name}`, 'aria-current': active ? 'page' : undefined } }, this.text(item.key)));
    }
    replace(this.nav, ...items);
  }

  private show(session: AdminSession | null, notice?: string): void {
    const generation = ++this.generation;
    this.banner.hidden = true;
    if (session === null) {
      this.chrome();
      renderLogin({
        api: this.api,
        locale: this.locale,
        main: this.main,
        notice,
        onLoggedIn: (next) => {
          this.session = next;
          this.show(next);
        },
      });
      return;
    }
    if (session.mustChangePassword) {
      this.chrome();
      renderPasswordChange({
        api: this.api,
        locale: this.locale,
        main: this.main,
        onChanged: (next) => {
          this.session = next;
          this.show(next);
        },
      });
      return;
    }
    const route = parseRoute(location.hash);
    this.chrome(route);
    const context: PageContext = {
      locale: this.locale,
      session,
      api: this.api,
      main: this.main,
      canWrite: session.role === 'admin',
      text: (key) => this.text(key),
      navigate: (hash) => {
        location.hash = hash;
      },
      reload: () => this.show(this.session),
      current: () => generation === this.generation,
      failure: (error) => h('p', { class: 'error', attrs: { role: 'alert' } }, this.describe(error)),
    };
    replace(this.main);
    const render = (): Promise<void> => {
      switch (route.name) {
        case 'terminals':
          return renderTerminals(context);
        case 'terminal':
          return renderTerminal(context, route.param ?? '');
        case 'users':
          return renderUsers(context);
        case 'requests':
          return renderRequests(context, (route.param ?? 'pending') as RequestTab);
        case 'recovery':
          return renderRecovery(context);
        case 'actions':
          return renderActions(context);
        case 'policies':
          return renderPolicies(context);
        default:
          return Promise.resolve();
      }
    };
    render().catch((error: unknown) => {
      if (context.current()) append(this.main, context.failure(error));
    });
  }

  private async logout(): Promise<void> {
    try {
      await this.api.post(paths.logout);
    } catch (error) {
      if (!(error instanceof ApiFailure) || error.status !== 401) {
        this.showBanner(this.describe(error));
        return;
      }
    }
    this.session = null;
    this.api.csrfToken = null;
    this.show(null, this.text('admin.login.loggedOut'));
  }

  private describe(error: unknown): string {
    if (!(error instanceof ApiFailure)) return `${this.text('admin.error.unexpected')} (${error instanceof Error ? error.message : String(error)})`;
    switch (error.status) {
      case 0:
        return this.text('admin.error.network');
      case 403:
        return `${this.text('admin.error.forbidden')} (${error.message})`;
      case 404:
        return `${this.text('admin.error.notFound')} (${error.message})`;
      case 429:
        return fill(this.text('admin.error.rateLimited'), { s: error.retryAfter ?? 30 });
      default:
        return `${this.text('admin.error.failed')} (${error.message})`;
    }
  }

  private showBanner(message: string): void {
    replace(this.banner, message);
    this.banner.hidden = false;
  }
}

function parseRoute(hash: string): Route {
  const parts = hash.replace(/^#\/?/, '').split('/');
  const [first, second] = parts;
  if (first === 'terminals' && second !== undefined && second !== '') return { name: 'terminal', param: decodeURIComponent(second) };
  if (first === 'requests') return { name: 'requests', param: (REQUEST_TABS as readonly string[]).includes(second ?? '') ? second! : 'pending' };
  if (first === 'users' || first === 'recovery' || first === 'actions' || first === 'policies') return { name: first, param: null };
  return { name: 'terminals', param: null };
}

function readLocale(): Locale {
  try {
    const stored = localStorage.getItem(LOCALE_KEY);
    if (stored === 'ja' || stored === 'en') return stored;
  } catch {
    // No storage: the default.
  }
  return DEFAULT_LOCALE;
}

function byId(id: string): HTMLElement {
  const element = document.getElementById(id);
  if (element === null) throw new Error(`dashboard: no #${id}`);
  return element;
}

void new Dashboard().start();
