import { z } from 'zod';
import { IpcConnectionError, IpcRequestRefused } from '../shared/ipc-connection.js';
import { RecoveryActionSchema } from '../shared/lock.js';
import type { Locale } from '../shared/i18n.js';
import { AgentBadAnswerError, AgentUnavailableError, type AgentClient } from './agent-client.js';
import { INVOKE_CHANNELS, type BridgeErrorCode, type BridgeResult, type InvokeChannel, type UiPrefs } from './bridge-api.js';

/**
 * The one place where main accepts calls from pages (CONVENTIONS.md "Boundaries"). For every call it
 * checks, in order: the channel is one of ours; the sender is the main frame of one of our own
 * `file://` pages that may use that channel; the arguments match the channel's schema. Only then
 * does it call the agent. Every answer is a `BridgeResult`; a refusal is logged and never reaches
 * the agent. Pages are untrusted input here: anything they send may be hostile.
 */

/** What the handlers need of the agent client. */
export type AgentCalls = Pick<
  AgentClient,
  | 'state'
  | 'getLock'
  | 'submit'
  | 'activity'
  | 'uiHeartbeat'
  | 'enrolBegin'
  | 'enrolConfirm'
  | 'recoveryChallenge'
  | 'recoveryRespond'
  | 'lockNow'
  | 'statusView'
  | 'requestList'
  | 'requestSubmit'
>;

/** What the handlers need of the app itself (windows and the staff member's preferences). */
export interface AppCalls {
  openRequestForm(deviceKey: string | null): Promise<void>;
  prefs(): UiPrefs;
  setLanguage(language: Locale): UiPrefs;
}

/** Where calls go: the agent, and the app (absent in a test bridge that has only an agent). */
export interface HandlerTargets {
  readonly agent: AgentCalls;
  readonly app?: AppCalls;
}

/** Our pages, by name → the `file://` URL each is loaded from. */
export type PageName = 'lock' | 'status' | 'request';
export type TrustedPages = Readonly<Record<PageName, string>>;

/** The parts of Electron's `IpcMainInvokeEvent` the check reads (so tests need no Electron runtime). */
export interface InvokeEventLike {
  readonly senderFrame: { readonly url: string; readonly parent: unknown } | null;
}

// Bounds as in `shared/ipc.ts` (the agent checks them again).
const secret = z.string().max(256);
const code = z.string().max(32);

/** A device key as the agent makes it (sysfs port path / hash): bounded, printable. */
const deviceKey = z.string().min(1).max(64).regex(/^[\x21-\x7e]+$/);
const RequestDraftSchema = z.strictObject({
  deviceKey,
  purpose: z.string().max(500),
  until: z.iso.datetime({ offset: true }),
  access: z.enum(['read-only', 'read-write']),
});

/** Thrown for an app channel when the bridge has no app (a test bridge with only an agent). */
class NoAppError extends Error {}
const appOf = (targets: HandlerTargets): AppCalls => {
  if (!targets.app) throw new NoAppError('no app in this bridge');
  return targets.app;
};

interface ChannelSpec<A extends z.ZodTuple> {
  readonly pages: readonly PageName[];
  readonly args: A;
  readonly run: (targets: HandlerTargets, args: z.infer<A>) => Promise<unknown>;
}
const spec = <A extends z.ZodTuple>(pages: readonly PageName[], args: A, run: (targets: HandlerTargets, args: z.infer<A>) => Promise<unknown>): ChannelSpec<A> => ({ pages, args, run });
const ALL_PAGES: readonly PageName[] = ['lock', 'status', 'request'];

const CHANNELS: { readonly [C in InvokeChannel]: ChannelSpec<z.ZodTuple> } = {
  'sekimori:agent.connection': spec(ALL_PAGES, z.tuple([]), ({ agent }) => Promise.resolve(agent.state)),
  'sekimori:lock.get': spec(ALL_PAGES, z.tuple([]), ({ agent }) => agent.getLock()),
  'sekimori:lock.submit': spec(['lock'], z.tuple([z.enum(['pin', 'totp']), secret]), ({ agent }, [factor, value]) => agent.submit(factor, value)),
  'sekimori:lock.activity': spec(['lock'], z.tuple([]), async ({ agent }) => {
    await agent.activity();
    return null;
  }),
  'sekimori:lock.heartbeat': spec(['lock'], z.tuple([]), async ({ agent }) => {
    await agent.uiHeartbeat();
    return null;
  }),
  'sekimori:lock.enrolBegin': spec(['lock'], z.tuple([secret]), ({ agent }, [pin]) => agent.enrolBegin(pin)),
  'sekimori:lock.enrolConfirm': spec(['lock'], z.tuple([code]), ({ agent }, [value]) => agent.enrolConfirm(value)),
  'sekimori:lock.recoveryChallenge': spec(['lock'], z.tuple([RecoveryActionSchema]), ({ agent }, [action]) => agent.recoveryChallenge(action)),
  'sekimori:lock.recoveryRespond': spec(['lock'], z.tuple([z.string().max(200)]), ({ agent }, [response]) => agent.recoveryRespond(response)),
  'sekimori:lock.now': spec(['status'], z.tuple([]), ({ agent }) => agent.lockNow()),
  'sekimori:status.get': spec(['status', 'request'], z.tuple([]), ({ agent }) => agent.statusView()),
  'sekimori:requests.list': spec(['status', 'request'], z.tuple([]), ({ agent }) => agent.requestList()),
  'sekimori:requests.submit': spec(['request'], z.tuple([RequestDraftSchema]), ({ agent }, [draft]) => agent.requestSubmit(draft)),
  'sekimori:app.openRequestForm': spec(['status'], z.tuple([deviceKey.nullable()]), async (targets, [key]) => {
    await appOf(targets).openRequestForm(key);
    return null;
  }),
  'sekimori:app.prefs': spec(ALL_PAGES, z.tuple([]), (targets) => Promise.resolve(appOf(targets).prefs())),
  'sekimori:app.setLanguage': spec(ALL_PAGES, z.tuple([z.enum(['ja', 'en'])]), (targets, [language]) => Promise.resolve(appOf(targets).setLanguage(language))),
};

const refused = (message: string): BridgeResult<never> => ({ ok: false, error: { code: 'refused', message } });
const failed = (code: BridgeErrorCode, message: string, reason?: string): BridgeResult<never> => ({ ok: false, error: reason === undefined ? { code, message } : { code, message, reason } });

function isInvokeChannel(channel: string): channel is InvokeChannel {
  return (INVOKE_CHANNELS as readonly string[]).includes(channel);
}

/**
 * Validates `args` for `channel` and calls the agent: everything except the sender check. The
 * router below uses it; a test bridge that stands in for Electron's IPC may call it directly.
 */
export async function callChannel(targets: HandlerTargets, channel: string, args: unknown, log: (message: string) => void = () => undefined): Promise<BridgeResult<unknown>> {
  if (!isInvokeChannel(channel)) return refused('unknown channel');
  const spec = CHANNELS[channel];
  const parsed = spec.args.safeParse(args);
  if (!parsed.success) {
    log(`[ipc] refused ${channel}: bad arguments`);
    return refused('bad arguments');
  }
  try {
    return { ok: true, value: await spec.run(targets, parsed.data) };
  } catch (error) {
    if (error instanceof AgentUnavailableError) return failed('agent-unavailable', error.message);
    if (error instanceof IpcRequestRefused) return failed('agent-refused', `${error.code}: ${error.message}`, error.code);
    if (error instanceof NoAppError) return refused(error.message);
    if (error instanceof AgentBadAnswerError) return failed('bad-answer', error.message);
    if (error instanceof IpcConnectionError) return failed('agent-unavailable', error.message);
    log(`[ipc] ${channel} failed: ${error instanceof Error ? error.message : String(error)}`);
    return failed('internal', 'internal error');
  }
}

/** Which of our pages `url` is (exact file URL, ignoring a `#fragment`), or null. */
export function pageOf(url: string, pages: TrustedPages): PageName | null {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return null;
  }
  if (parsed.protocol !== 'file:' || parsed.search !== '') return null;
  parsed.hash = '';
  for (const [name, pageUrl] of Object.entries(pages) as [PageName, string][]) {
    if (parsed.href === new URL(pageUrl).href) return name;
  }
  return null;
}

export interface IpcRouter {
  /** Checks and runs one call (what `ipcMain.handle` calls). */
  dispatch(channel: string, event: InvokeEventLike, args: readonly unknown[]): Promise<BridgeResult<unknown>>;
}

export function createIpcRouter(options: { agent: AgentCalls; app?: AppCalls; pages: TrustedPages; log?: (message: string) => void }): IpcRouter {
  const log = options.log ?? (() => undefined);
  return {
    async dispatch(channel, event, args) {
      if (!isInvokeChannel(channel)) {
        log('[ipc] refused a call on an unknown channel');
        return refused('unknown channel');
      }
      const frame = event.senderFrame;
      // Only the top frame of our own page: never an iframe, a navigated-away or destroyed frame.
      const page = frame && frame.parent === null ? pageOf(frame.url, options.pages) : null;
      if (page === null || !CHANNELS[channel].pages.includes(page)) {
        log(`[ipc] refused ${channel}: sender is not a page allowed to use it`);
        return refused('sender not allowed');
      }
      return callChannel(options.app ? { agent: options.agent, app: options.app } : { agent: options.agent }, channel, args, log);
    },
  };
}

/** The part of Electron's `ipcMain` used here. */
export interface IpcMainLike {
  handle(channel: string, listener: (event: InvokeEventLike, ...args: unknown[]) => Promise<unknown>): void;
  removeHandler(channel: string): void;
}

/** Registers the router for every channel. Returns a function that removes the handlers. */
export function registerIpcHandlers(ipcMain: IpcMainLike, router: IpcRouter): () => void {
  for (const channel of INVOKE_CHANNELS) {
    ipcMain.handle(channel, (event, ...args) => router.dispatch(channel, event, args));
  }
  return () => {
    for (const channel of INVOKE_CHANNELS) ipcMain.removeHandler(channel);
  };
}
