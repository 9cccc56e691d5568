import { z } from 'zod';
import { EventDataSchema, EventTypeSchema } from './journal.js';
import { AgentStatusSchema } from './api.js';

/**
 * The agent's local control channel (Unix socket / named pipe): one JSON object per line each way.
 * Everything arriving here comes from outside the privileged service and is validated before use.
 * Method names follow `<domain>.<verb>`.
 */
export const MAX_IPC_LINE_BYTES = 64 * 1024;

export const IpcRequestSchema = z.discriminatedUnion('method', [
  z.strictObject({ id: z.number().int().nonnegative(), method: z.literal('status.get') }),
  z.strictObject({
    id: z.number().int().nonnegative(),
    method: z.literal('journal.append'),
    params: z.strictObject({ type: EventTypeSchema, data: EventDataSchema }),
  }),
]);
export type IpcRequest = z.infer<typeof IpcRequestSchema>;

export const LocalStatusSchema = z.strictObject({
  deviceId: z.string().nullable(),
  enrolled: z.boolean(),
  journalLength: z.number().int().nonnegative(),
  ackSeq: z.number().int().nonnegative(),
  serverUrl: z.string().nullable(),
  lastContactAt: z.string().nullable(),
  status: AgentStatusSchema,
});
export type LocalStatus = z.infer<typeof LocalStatusSchema>;

export const IpcResponseSchema = z.union([
  z.strictObject({ id: z.number().int().nonnegative(), ok: z.literal(true), result: z.json() }),
  z.strictObject({
    id: z.number().int().nonnegative().nullable(),
    ok: z.literal(false),
    error: z.strictObject({ code: z.string(), message: z.string() }),
  }),
]);
export type IpcResponse = z.infer<typeof IpcResponseSchema>;
