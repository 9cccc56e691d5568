import type { LightMyRequestResponse } from 'fastify';
import { Secret } from 'otpauth';
import type { Browser, BrowserContext } from 'playwright-core';
import { ADMIN_CSRF_HEADER, ADMIN_SESSION_COOKIE, AdminPaths, type AdminRole, type AdminSession } from '../../shared/api.js';
import { adminTotpCode, createAdminAccount } from '../../server/admin-accounts.js';
import type { TestServer } from './helpers.js';

/** scrypt parameters low enough for tests (the stored parameters are what verification uses). */
export const FAST_SCRYPT = { N: 2 ** 10, r: 8, p: 1, keyLength: 32 } as const;

/** The origin light-my-request's default Host (`localhost:80`) means. */
export const SAME_ORIGIN = 'http://localhost';

export interface TestAccount {
  readonly user: string;
  readonly role: AdminRole;
  password: string;
  readonly secret: Uint8Array;
}

/** Creates an account straight through the store, as `sekimori-server create-admin` does. */
export async function createAccount(server: TestServer, user: string, role: AdminRole = 'admin', now = new Date()): Promise<TestAccount> {
  const created = await createAdminAccount({ store: server.store, dataKey: server.dataKey }, { user, role, now, scrypt: FAST_SCRYPT });
  if (!created.ok) throw new Error(created.error.message);
  return { user, role, password: created.value.initialPassword, secret: Secret.fromBase32(created.value.totpSecret).bytes };
}

/** The TOTP code of an account at `at` (the server's clock, which tests move). */
export function codeAt(account: TestAccount, at: Date): string {
  return adminTotpCode(account.secret, at.getTime());
}

export function loginRequest(server: TestServer, body: unknown, options: { remoteAddress?: string; headers?: Record<string, string> } = {}): Promise<LightMyRequestResponse> {
  return server.app.inject({
    method: 'POST',
    url: AdminPaths.login,
    headers: { 'content-type': 'application/json', ...options.headers },
    payload: JSON.stringify(body),
    ...(options.remoteAddress === undefined ? {} : { remoteAddress: options.remoteAddress }),
  });
}

/** A logged-in browser: the session cookie and the CSRF token. */
export interface Session {
  readonly id: string;
  readonly csrf: string;
  readonly session: AdminSession;
  readonly setCookie: string;
}

/** The session id in a `set-cookie` answer. */
export function sessionIdOf(response: LightMyRequestResponse): string {
  const header = response.headers['set-cookie'];
  const text = Array.isArray(header) ? header.join('\n') : (header ?? '');
  const match = new RegExp(`${ADMIN_SESSION_COOKIE}=([^;]*)`).exec(text);
  if (match === null) throw new Error(`no session cookie in ${text}`);
  return match[1]!;
}

/** Logs in with the account's password and the code at `at` (each call needs a later TOTP step). */
export async function login(server: TestServer, account: TestAccount, at: Date, remoteAddress?: string): Promise<Session> {
  const response = await loginRequest(server, { user: account.user, password: account.password, code: codeAt(account, at) }, { remoteAddress });
  if (response.statusCode !== 200) throw new Error(`login failed: ${response.statusCode} ${response.body}`);
  const session = response.json<AdminSession>();
  return { id: sessionIdOf(response), csrf: session.csrfToken!, session, setCookie: String(response.headers['set-cookie']) };
}

/** Headers of a browser request in `session` (cookie; for state-changing requests also Origin and the CSRF token). */
export function sessionHeaders(session: Session, options: { csrf?: string | null; origin?: string | null } = {}): Record<string, string> {
  const headers: Record<string, string> = { cookie: `${ADMIN_SESSION_COOKIE}=${session.id}` };
  const csrf = options.csrf === undefined ? session.csrf : options.csrf;
  const origin = options.origin === undefined ? SAME_ORIGIN : options.origin;
  if (csrf !== null) headers[ADMIN_CSRF_HEADER] = csrf;
  if (origin !== null) headers.origin = origin;
  return headers;
}

/** A request in `session` (JSON body when given). */
export function asSession(
  server: TestServer,
  session: Session,
  method: 'GET' | 'POST' | 'PUT' | 'DELETE' | 'HEAD',
  url: string,
  body?: unknown,
  options: { csrf?: string | null; origin?: string | null; headers?: Record<string, string> } = {},
): Promise<LightMyRequestResponse> {
  return server.app.inject({
    method,
    url,
    headers: { ...sessionHeaders(session, options), ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...options.headers },
    ...(body === undefined ? {} : { payload: JSON.stringify(body) }),
  });
}

/** A new account, logged in once and its initial password changed (`account.password` is the new one). */
export async function readyAccount(server: TestServer, user: string, role: AdminRole, at: () => Date): Promise<{ account: TestAccount; session: Session }> {
  const account = await createAccount(server, user, role, at());
  const session = await login(server, account, at());
  const changed = await asSession(server, session, 'POST', AdminPaths.password, { currentPassword: account.password, newPassword: `${user}-new-password-1` });
  if (changed.statusCode !== 200) throw new Error(`password change failed: ${changed.statusCode} ${changed.body}`);
  account.password = `${user}-new-password-1`;
  return { account, session };
}

/** A new account, logged in, its initial password already changed: ready for the admin API. */
export async function readySession(server: TestServer, user: string, role: AdminRole, at: () => Date, advance: (seconds: number) => void): Promise<Session> {
  const { session } = await readyAccount(server, user, role, at);
  advance(30);
  return session;
}

/**
 * A browser context logged in to the dashboard at `base` as `account` (password already changed),
 * through the page's own origin as the login form does; the clock moves 30 s so the TOTP code is fresh.
 */
export async function dashboardContext(browser: Browser, base: string, account: TestAccount, clock: (() => Date) & { advance: (seconds: number) => void }): Promise<BrowserContext> {
  const context = await browser.newContext({ locale: 'ja-JP', timezoneId: 'Asia/Tokyo', viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  await page.goto(base);
  clock.advance(30);
  const status = await page.evaluate(
    async ([url, body]) => (await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body, credentials: 'same-origin' })).status,
    [AdminPaths.login, JSON.stringify({ user: account.user, password: account.password, code: codeAt(account, clock()) })] as const,
  );
  if (status !== 200) throw new Error(`dashboard login failed: ${status}`);
  await page.close();
  return context;
}

/** A clock tests move by seconds. */
export function steppingClock(start = new Date('2026-11-25T00:00:00.000Z')): (() => Date) & { advance: (seconds: number) => void } {
  let now = start.getTime();
  const clock = (): Date => new Date(now);
  clock.advance = (seconds: number): void => {
    now += seconds * 1000;
  };
  return clock;
}
