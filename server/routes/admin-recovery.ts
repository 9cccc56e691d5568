import type { FastifyPluginCallback } from 'fastify';
import { z } from 'zod';
import { AdminActionSchema, ApiPaths, type AdminAction, RecoveryAnswerSchema, RecoveryRequestSchema, type RecoveryAnswer } from '../../shared/api.js';
import { assertNever } from '../../shared/result.js';
import { recordAdminAction } from '../admin-trail.js';
import type { Clock } from '../clock.js';
import type { DataKey } from '../data-key.js';
import { ApiHttpError } from '../http/api-error.js';
import { requireAdmin } from '../http/admin-auth.js';
import type { ZodTypeProvider } from '../http/zod-schemas.js';
import { answerRecovery } from '../recovery.js';
import type { Store } from '../store.js';

/** A challenge is 200 characters at most; nothing here needs a large body. */
export const RECOVERY_BODY_LIMIT = 16 * 1024;
export const MAX_ACTIONS_PAGE = 1000;

export const AdminActionsQuerySchema = z.strictObject({
  limit: z.coerce.number().int().min(1).max(MAX_ACTIONS_PAGE).default(100),
  /** Rows with an id below this (paging back from the last page's smallest id). */
  before: z.coerce.number().int().min(1).max(Number.MAX_SAFE_INTEGER).optional(),
});
export const AdminActionsResponseSchema = z.strictObject({ actions: z.array(AdminActionSchema) });

/**
 * Administrator recovery and the admin audit trail (admin token):
 * - `POST /api/v1/admin/recovery` (`RecoveryRequest`) → `RecoveryAnswer`. A mistyped group → 400
 *   `bad-request` with `groups: [n]` and the group in the message; too old → 400 `expired`; a
 *   chosen `deviceId` that does not exist → 404, that did not make the challenge → 400; a device
 *   without a recovery key → 404. Every request, answered or refused, is one `admin_actions` row.
 * - `GET /api/v1/admin/actions?limit=N&before=ID` → `{ actions }`, newest first.
 */
export const adminRecoveryRoutes: FastifyPluginCallback<{ store: Store; adminToken: string; dataKey: DataKey; clock: Clock }> = (
  app,
  { store, adminToken, dataKey, clock },
  done,
) => {
  requireAdmin(app, adminToken);
  const api = app.withTypeProvider<ZodTypeProvider>();

  api.post(
    ApiPaths.adminRecovery,
    { bodyLimit: RECOVERY_BODY_LIMIT, schema: { body: RecoveryRequestSchema, response: { 200: RecoveryAnswerSchema } } },
    async (request): Promise<RecoveryAnswer> => {
      const now = clock();
      const result = await answerRecovery({ store, dataKey }, request.body, now.getTime());
      const decoded = result.ok ? result.value.answer.decoded : result.decoded;
      const trail: Record<string, unknown> = { ...(decoded ?? {}), requestedDevice: request.body.deviceId ?? null };
      if (result.ok) {
        const { answer, respondedFor, keyEpoch } = result.value;
        const matched = answer.matches.find((match) => match.deviceId === respondedFor);
        const outcome = respondedFor !== null ? 'answered' : answer.matches.length === 0 ? 'no-match' : 'ambiguous';
        await recordAdminAction(
          store,
          now,
          'recovery',
          { deviceId: respondedFor, user: matched?.users.length === 1 ? matched.users[0] : null },
          { ...trail, outcome, matches: answer.matches.map((match) => match.deviceId), keyEpochUsed: keyEpoch },
        );
        request.log.info({ deviceId: respondedFor, outcome, matches: answer.matches.length }, 'recovery challenge answered');
        return answer;
      }
      const { code, message } = result.error;
      await recordAdminAction(store, now, 'recovery', { deviceId: request.body.deviceId ?? null }, { ...trail, outcome: code, groups: result.groups ?? null });
      switch (code) {
        case 'bad-challenge':
          throw new ApiHttpError('bad-request', message, {
            issues: [{ path: 'challenge', message }],
            ...(result.groups === undefined ? {} : { groups: [...result.groups] }),
          });
        case 'expired':
          throw new ApiHttpError('expired', message);
        case 'not-this-device':
          throw new ApiHttpError('bad-request', message, { issues: [{ path: 'deviceId', message }] });
        case 'unknown-device':
        case 'no-key':
          throw new ApiHttpError('not-found', message);
        default:
          return assertNever(code, 'recovery error');
      }
    },
  );

  api.get(
    ApiPaths.adminActions,
    { schema: { querystring: AdminActionsQuerySchema, response: { 200: AdminActionsResponseSchema } } },
    async (request) => ({
      // The serializer checks every detail against the JSON schema of the contract.
      actions: (await store.listAdminActions(request.query.limit, request.query.before)).map((action) => ({ ...action, detail: action.detail as AdminAction['detail'] })),
    }),
  );

  done();
};
