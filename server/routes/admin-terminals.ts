import type { FastifyPluginCallback } from 'fastify';
import { z } from 'zod';
import {
  AdminDeviceDetailSchema,
  AdminPaths,
  AdminTerminalsResponseSchema,
  AdminUsbDeviceSchema,
  ApiPaths,
  TERMINAL_SORTS,
  type AdminTerminal,
  type AdminUsbDevice,
} from '../../shared/api.js';
import type { JournalEntry } from '../../shared/journal.js';
import { TierSchema } from '../../shared/policy.js';
import type { Clock } from '../clock.js';
import { ApiHttpError } from '../http/api-error.js';
import { requireAdmin, type AdminAuth } from '../http/admin-auth.js';
import type { ZodTypeProvider } from '../http/zod-schemas.js';
import type { Store, TerminalRecord } from '../store.js';
import { DeviceParamsSchema } from './admin.js';

/** A terminal counts as online when its last heartbeat is at most this old (agents beat every 60 s by default). */
export const ONLINE_WINDOW_SECONDS = 300;
export const MAX_TERMINALS_PAGE = 200;
/** Most decision events a terminal's "devices seen" list is built from (the newest). */
export const USB_DECISION_EVENTS = 5000;

const USB_DECISION_TYPES = ['device.allowed', 'device.blocked', 'device.readonly'] as const;

export const AdminTerminalsQuerySchema = z.strictObject({
  /** Part of the hostname (ASCII case-insensitive), or a whole device id. */
  q: z.string().max(255).optional(),
  tier: TierSchema.optional(),
  status: z.enum(['online', 'offline']).optional(),
  sort: z.enum(TERMINAL_SORTS).default('hostname'),
  dir: z.enum(['asc', 'desc']).default('asc'),
  /** `nextCursor` of the previous page (same sort and direction). */
  after: z.string().max(2048).optional(),
  limit: z.coerce.number().int().min(1).max(MAX_TERMINALS_PAGE).default(50),
});

export const AdminUsbDevicesResponseSchema = z.strictObject({ devices: z.array(AdminUsbDeviceSchema) });

const CursorSchema = z.tuple([z.enum(TERMINAL_SORTS), z.enum(['asc', 'desc']), z.string().max(1024), z.string().max(100)]);

/**
 * The dashboard's terminal views (any administrator; all read-only):
 * - `GET /api/v1/admin/terminals?q=&tier=&status=online|offline&sort=hostname|lastSeen&dir=asc|desc&after=CURSOR&limit=N`
 *   → `{ terminals, nextCursor, serverTime, onlineWindowSeconds, counts }`: keyset paging (the
 *   cursor names the last row's sort key and id), so page 1000 costs what page 1 does;
 * - `GET /api/v1/admin/devices/:id` → one terminal with its last status;
 * - `GET /api/v1/admin/devices/:id/usb-devices` → the USB devices it reported, each with its last
 *   decision (from the newest `device.allowed/blocked/readonly` events).
 */
export const adminTerminalRoutes: FastifyPluginCallback<{ store: Store; auth: AdminAuth; clock: Clock }> = (app, { store, auth, clock }, done) => {
  requireAdmin(app, auth);
  const api = app.withTypeProvider<ZodTypeProvider>();

  api.get(
    AdminPaths.terminals,
    { config: { access: 'read' }, schema: { querystring: AdminTerminalsQuerySchema, response: { 200: AdminTerminalsResponseSchema } } },
    async (request) => {
      const { q, tier, status, sort, dir, after, limit } = request.query;
      const now = clock();
      const onlineSince = new Date(now.getTime() - ONLINE_WINDOW_SECONDS * 1000).toISOString();
      const cursor = after === undefined ? undefined : decodeCursor(after, sort, dir);
      const text = q?.trim();
      const { rows, more } = await store.listTerminals({
        sort,
        descending: dir === 'desc',
        tier,
        online: status === undefined ? undefined : status === 'online',
        onlineSince,
        text: text === '' ? undefined : text,
        after: cursor,
        limit,
      });
      const last = rows.at(-1);
      return {
        terminals: rows.map((row) => toTerminal(row, onlineSince)),
        nextCursor: more && last !== undefined ? encodeCursor(sort, dir, sort === 'hostname' ? last.hostname : (last.lastSeenAt ?? ''), last.id) : null,
        serverTime: now.toISOString(),
        onlineWindowSeconds: ONLINE_WINDOW_SECONDS,
        counts: await store.terminalCounts(onlineSince),
      };
    },
  );

  api.get(
    `${ApiPaths.adminDevices}/:id`,
    { config: { access: 'read' }, schema: { params: DeviceParamsSchema, response: { 200: AdminDeviceDetailSchema } } },
    async (request) => {
      const now = clock();
      const onlineSince = new Date(now.getTime() - ONLINE_WINDOW_SECONDS * 1000).toISOString();
      const terminal = await store.terminal(request.params.id);
      if (terminal === null) throw new ApiHttpError('not-found', `no device ${request.params.id}`);
      return {
        ...toTerminal(terminal, onlineSince),
        arch: terminal.arch,
        ackSeq: terminal.ackSeq,
        status: terminal.status as z.infer<typeof AdminDeviceDetailSchema>['status'],
        serverTime: now.toISOString(),
        department: terminal.department,
        violationsTotal: terminal.violationsTotal,
        violationsAckedSeq: terminal.violationsAckedSeq,
      };
    },
  );

  api.get(
    `${ApiPaths.adminDevices}/:id/usb-devices`,
    { config: { access: 'read' }, schema: { params: DeviceParamsSchema, response: { 200: AdminUsbDevicesResponseSchema } } },
    async (request) => {
      const { id } = request.params;
      if ((await store.chainHead(id)) === null) throw new ApiHttpError('not-found', `no device ${id}`);
      return { devices: usbDevicesSeen(await store.eventsOfTypes(id, USB_DECISION_TYPES, USB_DECISION_EVENTS)) };
    },
  );

  done();
};

function toTerminal(row: TerminalRecord, onlineSince: string): AdminTerminal {
  return {
    deviceId: row.id,
    hostname: row.hostname,
    os: row.os,
    agentVersion: row.agentVersion,
    tier: row.tier,
    enrolledAt: row.enrolledAt,
    lastSeenAt: row.lastSeenAt,
    online: row.lastSeenAt !== null && row.lastSeenAt >= onlineSince,
    lockState: row.lockState,
    policyVersion: row.policyVersion,
    enforcement: row.enforcement,
    violations: row.violations,
    tamperFlags: row.tamperFlags,
  };
}

function encodeCursor(sort: string, dir: string, key: string, id: string): string {
  return Buffer.from(JSON.stringify([sort, dir, key, id]), 'utf8').toString('base64url');
}

function decodeCursor(text: string, sort: string, dir: string): { key: string; id: string } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(text, 'base64url').toString('utf8'));
  } catch {
    parsed = null;
  }
  const cursor = CursorSchema.safeParse(parsed);
  if (!cursor.success || cursor.data[0] !== sort || cursor.data[1] !== dir) {
    throw new ApiHttpError('bad-request', 'after: not a cursor of this list (sort and direction must stay the same)', { issues: [{ path: 'after', message: 'invalid cursor' }] });
  }
  return { key: cursor.data[2], id: cursor.data[3] };
}

function text(value: unknown): string {
  return typeof value === 'string' ? value : '';
}

/**
 * The USB devices of a terminal's decision events (newest first in `events`): one row per device
 * identity (vendor:product and serial; the port for a device that could not be read), with its
 * newest decision and rule and how many decisions were journaled for it. Terminal-supplied strings
 * pass through as data; the dashboard renders them as text.
 */
export function usbDevicesSeen(events: readonly JournalEntry[]): AdminUsbDevice[] {
  const seen = new Map<string, AdminUsbDevice>();
  for (const event of events) {
    const device = typeof event.data.device === 'object' && event.data.device !== null && !Array.isArray(event.data.device) ? (event.data.device as Record<string, unknown>) : {};
    const usbId = text(device.id);
    const serial = text(device.serial);
    const identity = usbId === '' && serial === '' ? `port:${text(event.data.key)}` : `${usbId}\u0000${serial}`;
    const known = seen.get(identity);
    if (known !== undefined) {
      seen.set(identity, { ...known, decisions: known.decisions + 1 });
      continue;
    }
    seen.set(identity, {
      usbId,
      serial,
      name: text(device.name),
      manufacturer: text(device.manufacturer),
      lastDecision: event.type,
      rule: event.data.rule ?? null,
      lastSeq: event.seq,
      lastTime: event.time,
      decisions: 1,
    });
  }
  return [...seen.values()];
}
