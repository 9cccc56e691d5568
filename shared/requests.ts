import { z } from 'zod';
import { quoteString, UsbDeviceIdentitySchema, type UsbDeviceIdentity } from './usb-rules/index.js';

/**
 * Device requests (申請 → 承認/却下, DESIGN.md §8): a staff member asks to use a blocked device;
 * an administrator approves (optionally narrowing the window or to read-only) or rejects with a
 * reason; an approval becomes a `PolicyException` in that terminal's next signed policy. Pure.
 *
 * The device identity always comes from the agent's own record of the device (never from what the
 * user typed), and the exception's match rule is derived from it here, in one place, so the server
 * and the agent agree on exactly which device an approval covers.
 */

/** Longest window a request may ask for (an approval can only narrow it). */
export const MAX_REQUEST_WINDOW_MS = 90 * 86_400_000;
export const REQUEST_PURPOSE_MAX = 500;

const isoInstant = z.iso.datetime({ offset: true });
export const RequestIdSchema = z.string().regex(/^req_[0-9a-f]{24}$/, 'not a request id');
export const RequestAccessSchema = z.enum(['read-only', 'read-write']);
export type RequestAccess = z.infer<typeof RequestAccessSchema>;
export const REQUEST_STATES = ['pending', 'approved', 'rejected', 'expired', 'revoked'] as const;
export const RequestStateSchema = z.enum(REQUEST_STATES);
export type RequestState = z.infer<typeof RequestStateSchema>;

/** What the agent sends for a request (device auth). `id` is made by the agent, so a resend is idempotent. */
export const DeviceRequestSubmissionSchema = z
  .strictObject({
    id: RequestIdSchema,
    user: z.string().min(1).max(256),
    device: UsbDeviceIdentitySchema,
    purpose: z.string().trim().min(1).max(REQUEST_PURPOSE_MAX),
    from: isoInstant,
    until: isoInstant,
    access: RequestAccessSchema,
    submittedAt: isoInstant,
  })
  .refine((r) => Date.parse(r.until) > Date.parse(r.from), { message: 'until must be after from', path: ['until'] })
  .refine((r) => Date.parse(r.until) - Date.parse(r.from) <= MAX_REQUEST_WINDOW_MS, { message: 'the window may be at most 90 days', path: ['until'] });
export type DeviceRequestSubmission = z.infer<typeof DeviceRequestSubmissionSchema>;

/** A request as the server keeps it and answers it (to the agent and the dashboard). */
export const DeviceRequestSchema = z.strictObject({
  id: RequestIdSchema,
  deviceId: z.string(),
  hostname: z.string(),
  user: z.string(),
  device: UsbDeviceIdentitySchema,
  /** The exception's match rule (`deviceMatchRule`). */
  rule: z.string(),
  purpose: z.string(),
  from: z.string(),
  until: z.string(),
  access: RequestAccessSchema,
  state: RequestStateSchema,
  submittedAt: z.string(),
  decidedAt: z.string().nullable(),
  decidedBy: z.string().nullable(),
  /** The approved window and access (may be narrower than asked), or the rejection reason. */
  approvedUntil: z.string().nullable(),
  approvedAccess: RequestAccessSchema.nullable(),
  reason: z.string().nullable(),
});
export type DeviceRequest = z.infer<typeof DeviceRequestSchema>;

export const ApproveRequestSchema = z.strictObject({
  /** Narrow the end of the window (never extend it). */
  until: isoInstant.optional(),
  /** Narrow to read-only (never widen). */
  access: RequestAccessSchema.optional(),
  comment: z.string().max(500).optional(),
});
export const RejectRequestSchema = z.strictObject({ reason: z.string().trim().min(1).max(500) });

/**
 * The match rule an approval installs: vendor:product, serial and USBGuard's device hash (which
 * covers the descriptors, so a different device with a copied serial does not match). A device
 * without a serial is matched by id and hash only; the hash still pins its descriptors.
 */
export function deviceMatchRule(device: UsbDeviceIdentity): string {
  const parts = [`id ${device.vendorId}:${device.productId}`];
  if (device.serial !== '') parts.push(`serial ${quoteString(device.serial)}`);
  if (device.hash !== '') parts.push(`hash ${quoteString(device.hash)}`);
  return parts.join(' ');
}

/** Applies an approval's narrowing to a request; refuses a widening (longer window, read-write for read-only). */
export function narrowApproval(
  request: Pick<DeviceRequest, 'until' | 'access'>,
  approval: z.infer<typeof ApproveRequestSchema>,
  nowMs: number,
): { ok: true; until: string; access: RequestAccess } | { ok: false; message: string } {
  const until = approval.until ?? request.until;
  if (Date.parse(until) > Date.parse(request.until)) return { ok: false, message: 'an approval may shorten the window, not extend it' };
  if (Date.parse(until) <= nowMs) return { ok: false, message: 'the approved window has already ended' };
  const access = approval.access ?? request.access;
  if (request.access === 'read-only' && access === 'read-write') return { ok: false, message: 'a read-only request cannot be approved read-write' };
  return { ok: true, until: new Date(Date.parse(until)).toISOString(), access };
}
