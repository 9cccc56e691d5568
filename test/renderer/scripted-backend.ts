import type { AgentConnectionState, BridgeResult } from '../../renderer/preload-api.js';
import type { PreloadBackend } from '../helpers/browser.js';

/**
 * What the scripted stand-ins of main + agent behind the pages' preload channels share
 * (`scripted-lock-agent.ts`, `scripted-status-agent.ts`): the fixtures' clock, every call
 * recorded, and main's own answers: the connection, and `agent-unavailable` for a call that needs
 * the agent while it is not connected.
 */

/** The agent's clock in every fixture: 2025-11-26 09:41 JST. */
export const NOW_MS = Date.parse('2025-11-26T09:41:00+09:00');
export const MINUTE = 60_000;
export const HOUR = 60 * MINUTE;
export const DAY = 24 * HOUR;
/** The fixtures' clock moved by `offsetMs`, as the contract's ISO text. */
export const iso = (offsetMs: number): string => new Date(NOW_MS + offsetMs).toISOString();

export type Answer = BridgeResult<unknown>;
export const ok = (value: unknown): Answer => ({ ok: true, value });

export abstract class ScriptedBackend implements PreloadBackend {
  readonly calls: { channel: string; args: unknown[] }[] = [];
  connection: AgentConnectionState = 'connected';

  /** @param mainOnly channels main answers itself, which work without the agent */
  protected constructor(private readonly mainOnly: ReadonlySet<string> = new Set()) {}

  count(channel: string): number {
    return this.calls.filter((call) => call.channel === channel).length;
  }

  argsOf(channel: string): unknown[][] {
    return this.calls.filter((call) => call.channel === channel).map((call) => call.args);
  }

  invoke(channel: string, args: unknown[]): Promise<unknown> {
    this.calls.push({ channel, args });
    return Promise.resolve(this.route(channel, args));
  }

  /** The answer to a channel the agent serves (connected); null for a channel the stand-in does not know. */
  protected abstract answer(channel: string, args: unknown[]): Answer | null;

  private route(channel: string, args: unknown[]): Answer {
    if (channel === 'sekimori:agent.connection') return ok(this.connection);
    if (this.connection !== 'connected' && !this.mainOnly.has(channel)) {
      return { ok: false, error: { code: 'agent-unavailable', message: 'the protection service is not connected' } };
    }
    return this.answer(channel, args) ?? { ok: false, error: { code: 'refused', message: 'unknown channel' } };
  }
}
