import crypto from 'node:crypto';
import type { Logger } from 'winston';
import { z } from 'zod';
import { DeviceRequestSubmissionSchema, MAX_REQUEST_WINDOW_MS, RequestStateSchema, RequestAccessSchema, type DeviceRequest, type DeviceRequestSubmission, type RequestAccess } from '../../shared/requests.js';
import type { UsbDeviceIdentity } from '../../shared/usb-rules/index.js';
import type { LocalRequestView } from '../../shared/ipc.js';
import type { Journal } from '../journal/journal.js';
import { readJsonFile, writeJsonFileAtomic } from '../state.js';

/** What the agent needs from the server for requests (absent while not enrolled). */
export interface RequestServer {
  /** Delivers a request; true once the server holds it (a resend is idempotent there). */
  submit(request: DeviceRequestSubmission): Promise<boolean>;
  /** This terminal's requests as the server knows them; null when unreachable. */
  list(): Promise<DeviceRequest[] | null>;
}

const LocalRequestSchema = z.strictObject({
  submission: DeviceRequestSubmissionSchema,
  delivered: z.boolean(),
  state: z.union([RequestStateSchema, z.literal('unsent')]),
  approvedUntil: z.string().nullable(),
  approvedAccess: RequestAccessSchema.nullable(),
  reason: z.string().nullable(),
});
type LocalRequest = z.infer<typeof LocalRequestSchema>;
const OutboxFileSchema = z.strictObject({ version: z.literal(1), requests: z.array(LocalRequestSchema).max(1000) });

/** Most requests kept locally (the newest); the server keeps them all. */
const KEEP = 200;

export type SubmitError = 'purpose-empty' | 'bad-window';

/**
 * Device requests (申請) on the terminal: a request is journaled (`request.submitted`) and kept in
 * `requests.json` (0600) until the server holds it, so a request made offline is delivered later
 * and never lost; the server's decisions are journaled (`request.decided`) when first seen. The
 * device identity is the agent's own record, never what the user typed.
 */
export class RequestOutbox {
  private constructor(
    private readonly file: string,
    private readonly journal: Journal,
    private readonly logger: Logger,
    private requests: LocalRequest[],
  ) {}

  static async open(file: string, journal: Journal, logger: Logger): Promise<RequestOutbox> {
    let stored: z.infer<typeof OutboxFileSchema> | null = null;
    try {
      stored = await readJsonFile(file, OutboxFileSchema);
    } catch (error) {
      // A damaged file loses the local view only: the server holds every delivered request.
      logger.error('requests.json unreadable; starting empty', { error: String(error) });
      await journal.append('tamper.detected', { kind: 'requests-file', message: String(error).slice(0, 300) });
    }
    return new RequestOutbox(file, journal, logger, stored?.requests ?? []);
  }

  async submit(input: { user: string; device: UsbDeviceIdentity; purpose: string; until: string; access: RequestAccess; nowMs: number }): Promise<{ ok: true; id: string } | { ok: false; code: SubmitError; message: string }> {
    const purpose = input.purpose.trim();
    if (purpose === '') return { ok: false, code: 'purpose-empty', message: 'write what the device is needed for' };
    const untilMs = Date.parse(input.until);
    if (!(untilMs > input.nowMs) || untilMs - input.nowMs > MAX_REQUEST_WINDOW_MS) return { ok: false, code: 'bad-window', message: 'the end must be in the future and at most 90 days away' };
    const now = new Date(input.nowMs).toISOString();
    const submission = DeviceRequestSubmissionSchema.parse({
      id: `req_${crypto.randomBytes(12).toString('hex')}`,
      user: input.user,
      device: input.device,
      purpose,
      from: now,
      until: new Date(untilMs).toISOString(),
      access: input.access,
      submittedAt: now,
    });
    this.requests = [...this.requests, { submission, delivered: false, state: 'unsent' as const, approvedUntil: null, approvedAccess: null, reason: null }].slice(-KEEP);
    await this.save();
    await this.journal.append('request.submitted', {
      requestId: submission.id,
      user: submission.user,
      device: { id: `${input.device.vendorId}:${input.device.productId}`, name: input.device.name, serial: input.device.serial, hash: input.device.hash },
      purpose,
      until: submission.until,
      access: submission.access,
    });
    return { ok: true, id: submission.id };
  }

  list(): LocalRequestView[] {
    return this.requests
      .map((r) => ({
        id: r.submission.id,
        device: { id: `${r.submission.device.vendorId}:${r.submission.device.productId}`, name: r.submission.device.name, serial: r.submission.device.serial },
        purpose: r.submission.purpose,
        until: r.submission.until,
        access: r.submission.access,
        state: r.state,
        approvedUntil: r.approvedUntil,
        approvedAccess: r.approvedAccess,
        reason: r.reason,
        submittedAt: r.submission.submittedAt,
      }))
      .reverse();
  }

  /** Delivers undelivered requests and takes the server's states (after each heartbeat). */
  async sync(server: RequestServer): Promise<void> {
    let changed = false;
    for (const request of this.requests) {
      if (request.delivered) continue;
      if (!(await server.submit(request.submission).catch(() => false))) break;
      request.delivered = true;
      if (request.state === 'unsent') request.state = 'pending';
      changed = true;
    }
    if (this.requests.some((r) => r.delivered && (r.state === 'pending' || r.state === 'approved'))) {
      const known = await server.list().catch(() => null);
      for (const remote of known ?? []) {
        const local = this.requests.find((r) => r.submission.id === remote.id);
        if (!local || local.state === remote.state) continue;
        local.state = remote.state;
        local.approvedUntil = remote.approvedUntil;
        local.approvedAccess = remote.approvedAccess;
        local.reason = remote.reason;
        changed = true;
        if (remote.state === 'approved' || remote.state === 'rejected' || remote.state === 'revoked') {
          await this.journal.append('request.decided', {
            requestId: remote.id,
            state: remote.state,
            decidedBy: remote.decidedBy,
            approvedUntil: remote.approvedUntil,
            approvedAccess: remote.approvedAccess,
            reason: remote.reason,
          });
        }
      }
    }
    if (changed) await this.save();
  }

  private async save(): Promise<void> {
    await writeJsonFileAtomic(this.file, { version: 1, requests: this.requests });
    this.logger.debug('requests saved', { count: this.requests.length });
  }
}
