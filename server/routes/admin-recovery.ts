import type { FastifyPluginCallback } from 'fastify';
import { z } from 'zod';
import { AdminActionSchema, AdminPaths, ApiPaths, type AdminAction, RecoveryAnswerSchema, RecoveryRequestSchema, type RecoveryAnswer } from '../../shared/api.js';
import { assertNever } from '../../shared/result.js';
import { recordAdminAction } from '../admin-trail.js';
import type { Clock } from '../clock.js';
import type { DataKey } from '../data-key.js';
import { ApiHttpError } from '../http/api-error.js';
import { actorOf, requireAdmin, type AdminAuth } from '../http/admin-auth.js';
import type { ZodTypeProvider } from '../http/zod-schemas.js';
import { answerRecovery, type RecoveryErrorCode } from '../recovery.js';
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
 * Administrator recovery and the admin audit trail (recovery needs role admin; the trail is readable by auditors):
 * - `POST /api/v1/admin/recovery` (`RecoveryRequest`) → `RecoveryAnswer`. A mistyped group → 400
 *   `bad-request` with `groups: [n]` and the group in the message; too old → 400 `expired`; a
 *   chosen `deviceId` that does not exist → 404, that did not make the challenge → 400; a device
 *   without a recovery key → 404. Every request, answered or refused, is one `admin_actions` row.
 * - `POST /api/v1/admin/recovery/decode` (`RecoveryRequest`) → `RecoveryAnswer` with `response`
 *   null: what the challenge says and which terminals and users match, so the administrator can
 *   confirm them with the caller BEFORE asking for the response (the dashboard's first step). Same
 *   errors as above; not recorded (it reveals no secret and changes nothing), but role admin only,
 *   as it is part of recovery.
 * - `GET /api/v1/admin/actions?limit=N&before=ID` → `{ actions }`, newest first.
 */
export const adminRecoveryRoutes: FastifyPluginCallback<{ store: Store; auth: AdminAuth; dataKey: DataKey; clock: Clock }> = (
  app,
  { store, auth, dataKey, clock },
  done,
) => {
  requireAdmin(app, auth);
  const api = app.withTypeProvider<ZodTypeProvider>();

  api.post(
    ApiPaths.adminRecovery,
    { config: { access: 'write' }, bodyLimit: RECOVERY_BODY_LIMIT, schema: { body: RecoveryRequestSchema, response: { 200: RecoveryAnswerSchema } } },
    async (request): Promise<RecoveryAnswer> => {
      const actor = actorOf(request).user;
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
          actor,
          'recovery',
          { deviceId: respondedFor, user: matched?.users.length === 1 ? matched.users[0] : null },
          { ...trail, outcome, matches: answer.matches.map((match) => match.deviceId), keyEpochUsed: keyEpoch },
        );
        request.log.info({ deviceId: respondedFor, outcome, matches: answer.matches.length }, 'recovery challenge answered');
        return answer;
      }
      await recordAdminAction(store, now, actor, 'recovery', { deviceId: request.body.deviceId ?? null }, { ...trail, outcome: result.error.code, groups: result.groups ?? null });
      throw recoveryRefusal(result.error.code, result.error.message, result.groups);
    },
  );

  api.post(
    AdminPaths.recoveryDecode,
    { config: { access: 'write' }, bodyLimit: RECOVERY_BODY_LIMIT, schema: { body: RecoveryRequestSchema, response: { 200: RecoveryAnswerSchema } } },
    async (request): Promise<RecoveryAnswer> => {
      const result = await answerRecovery({ store, dataKey }, request.body, clock().getTime());
      if (result.ok) return { ...result.value.answer, response: null };
      throw recoveryRefusal(result.error.code, result.error.message, result.groups);
    },
  );

  api.get(
    ApiPaths.adminActions,
    { config: { access: 'read' }, schema: { querystring: AdminActionsQuerySchema, response: { 200: AdminActionsResponseSchema } } },
    async (request) => ({
      // The serializer checks every detail against the JSON schema of the contract.
      actions: (await store.listAdminActions(request.query.limit, request.query.before)).map((action) => ({ ...action, detail: action.detail as AdminAction['detail'] })),
    }),
  );

  done();
};

function recoveryRefusal(code: RecoveryErrorCode, message: string, groups: readonly number[] | undefined): ApiHttpError {
  switch (code) {
    case 'bad-challenge':
      return new ApiHttpError('bad-request', message, { issues: [{ path: 'challenge', message }], ...(groups === undefined ? {} : { groups: [...groups] }) });
    case 'expired':
      return new ApiHttpError('expired', message);
    case 'not-this-device':
      return new ApiHttpError('bad-request', message, { issues: [{ path: 'deviceId', message }] });
    case 'unknown-device':
    case 'no-key':
      return new ApiHttpError('not-found', message);
    default:
      return assertNever(code, 'recovery error');
  }
}
