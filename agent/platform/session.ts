import type { CommandRunner } from './command-runner.js';

/**
 * The OS desktop session, as far as the lock needs it: who sits at the console, what a peer uid is
 * called, and locking the session when the lock screen cannot be shown. All through the command
 * boundary (`loginctl`, `getent`), so tests drive them with a fake runner.
 */
export interface SessionPlatform {
  /** The user of the active console session; null when there is none or it cannot be told. */
  consoleUser(): Promise<string | null>;
  /** The login name of `uid`; null when unknown. */
  userName(uid: number): Promise<string | null>;
  /** Locks every graphical session (the hard fallback when the overlay is gone). True when the OS accepted it. */
  lockSessions(): Promise<boolean>;
}

const CACHE_MS = 2_000;
// A login name as getent prints it: no whitespace, colon or slash, and (checked separately) no control characters.
const USER_NAME = /^[^\s:/]{1,256}$/;
const hasControl = (text: string): boolean => [...text].some((ch) => ch.charCodeAt(0) < 0x20 || ch.charCodeAt(0) === 0x7f);

/**
 * Linux with systemd-logind: the active session of `seat0` and its user. A fixed console user
 * (installer config `lock.consoleUser`, for kiosk terminals and tests) replaces the logind query.
 */
export class LinuxSession implements SessionPlatform {
  private cached: { at: number; user: string | null } | null = null;
  private readonly names = new Map<number, string | null>();

  constructor(
    private readonly runner: CommandRunner,
    private readonly fixedConsoleUser: string | null = null,
    private readonly now: () => number = Date.now,
  ) {}

  async consoleUser(): Promise<string | null> {
    if (this.fixedConsoleUser !== null) return this.fixedConsoleUser;
    if (this.cached && this.now() - this.cached.at < CACHE_MS) return this.cached.user;
    const user = await this.queryConsoleUser();
    this.cached = { at: this.now(), user };
    return user;
  }

  private async queryConsoleUser(): Promise<string | null> {
    const seat = await this.runner.run('loginctl', ['show-seat', 'seat0', '--property=ActiveSession', '--value'], { timeoutMs: 5_000 });
    const session = seat.code === 0 ? seat.stdout.trim() : '';
    if (!/^[A-Za-z0-9_-]{1,64}$/.test(session)) return null;
    const shown = await this.runner.run('loginctl', ['show-session', session, '--property=Name', '--value'], { timeoutMs: 5_000 });
    const name = shown.code === 0 ? shown.stdout.trim() : '';
    return USER_NAME.test(name) && !hasControl(name) ? name : null;
  }

  async userName(uid: number): Promise<string | null> {
    if (!Number.isSafeInteger(uid) || uid < 0) return null;
    if (this.names.has(uid)) return this.names.get(uid) ?? null;
    const result = await this.runner.run('getent', ['passwd', String(uid)], { timeoutMs: 5_000 });
    const name = result.code === 0 ? (result.stdout.split('\n')[0] ?? '').split(':')[0] ?? '' : '';
    const known = USER_NAME.test(name) && !hasControl(name) ? name : null;
    // Only positive answers are cached: a user created later is found on the next call.
    if (known !== null) this.names.set(uid, known);
    return known;
  }

  async lockSessions(): Promise<boolean> {
    const result = await this.runner.run('loginctl', ['lock-sessions'], { timeoutMs: 5_000 });
    return result.code === 0;
  }
}

/** Platforms without a session adapter yet (Windows, macOS): nobody can be told apart, so console methods are refused. */
export class UnknownSession implements SessionPlatform {
  constructor(private readonly fixedConsoleUser: string | null = null) {}
  consoleUser(): Promise<string | null> {
    return Promise.resolve(this.fixedConsoleUser);
  }
  userName(): Promise<string | null> {
    return Promise.resolve(null);
  }
  lockSessions(): Promise<boolean> {
    return Promise.resolve(false);
  }
}
