import type { Command } from '../shared/api.js';
import { randomHex } from './crypto.js';
import type { DataKey } from './data-key.js';
import { recoveryKeyAad } from './data-key.js';
import type { Store, StoredCommand } from './store.js';

/**
 * Commands (DESIGN.md §7): queued per device by administrators (`lock`, `resync`, `reset-factors`)
 * or by the server (`set-recovery-key`), delivered with every heartbeat until the agent
 * acknowledges them (`acks` of the next heartbeat), oldest first, at most
 * MAX_COMMANDS_PER_HEARTBEAT at a time. Delivery is at-least-once: the agent must treat a command
 * id it already executed as done (ack it again).
 */

/** Most commands one heartbeat answer carries; the rest follow in later heartbeats. */
export const MAX_COMMANDS_PER_HEARTBEAT = 20;

/** `cmd_` + 24 random hex digits. */
export function newCommandId(): string {
  return `cmd_${randomHex(12)}`;
}

/**
 * The device's open commands as the heartbeat sends them (marked delivered). A `set-recovery-key`
 * is stored with its epoch only: its key is opened from the device's pending recovery key here, at
 * the last moment, so the key exists in one sealed place. `taken`: the commands the heartbeat's
 * `recordHeartbeat` already took (with `deliver`); absent: taken here.
 */
export async function commandsForHeartbeat(store: Store, dataKey: DataKey, deviceId: string, at: string, taken?: readonly StoredCommand[]): Promise<Command[]> {
  const open = taken ?? (await store.takeCommandsToDeliver(deviceId, MAX_COMMANDS_PER_HEARTBEAT, at));
  const keys = open.some((command) => command.type === 'set-recovery-key') ? await store.recoveryKeys(deviceId) : null;
  const out: Command[] = [];
  for (const command of open) {
    if (command.type !== 'set-recovery-key') {
      out.push(wireCommand(command));
      continue;
    }
    const pending = keys?.pending;
    // Every set-recovery-key but the pending key's own was cancelled with its key; none to send.
    if (!pending || pending.commandId !== command.id) continue;
    const key = dataKey.open(pending.sealedKey, recoveryKeyAad(deviceId, pending.epoch));
    out.push({ id: command.id, type: command.type, params: { key: key.toString('base64'), epoch: pending.epoch } });
  }
  return out;
}

function wireCommand(command: StoredCommand): Command {
  return command.params === null
    ? { id: command.id, type: command.type }
    : { id: command.id, type: command.type, params: command.params as NonNullable<Command['params']> };
}
