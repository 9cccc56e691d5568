import type { FastifyPluginCallback } from 'fastify';
import { z } from 'zod';
import { ApiPaths, DeviceIdSchema, SignedPolicySchema } from '../../shared/api.js';
import { TierSchema, type Tier } from '../../shared/policy.js';
import { assertNever } from '../../shared/result.js';
import { recordAdminAction } from '../admin-trail.js';
import type { Clock } from '../clock.js';
import { ApiHttpError } from '../http/api-error.js';
import { actorOf, requireAdmin, type AdminAuth } from '../http/admin-auth.js';
import type { ZodTypeProvider } from '../http/zod-schemas.js';
import { deleteGroupPolicy, isTier, policyDocument, policyEtag, publishGroupPolicy, publishPolicy, toSignedPolicy, type PublishErrorCode } from '../policies.js';
import type { PolicySigningKey } from '../policy-key.js';
import { DepartmentSchema } from '../selfcheck-runs.js';
import type { PolicyHead, Store } from '../store.js';
import { DeviceParamsSchema } from './admin.js';

/** The admin API's policy schemas (server → dashboard only, like those of routes/admin.ts). */
export const TierParamsSchema = z.strictObject({ tier: z.string().max(100) });

export const PublishedPolicyResponseSchema = z.strictObject({
  tier: TierSchema,
  version: z.number().int(),
  keyId: z.string(),
  etag: z.string(),
});

export const PolicyVersionSchema = z.strictObject({
  version: z.number().int(),
  keyId: z.string(),
  etag: z.string(),
  createdAt: z.string(),
  createdBy: z.string(),
});

export const CurrentPolicyResponseSchema = z.strictObject({
  tier: TierSchema,
  ...PolicyVersionSchema.shape,
  /** Exactly what `GET /policy` delivers to the tier's terminals. */
  signed: SignedPolicySchema,
  /** The payload, parsed. */
  policy: z.record(z.string(), z.unknown()),
});

/** `:department` is validated as a department name (DepartmentSchema) in the handler, so a bad one is a 400 on `department`. */
export const GroupParamsSchema = z.strictObject({ tier: z.string().max(100), department: z.string().max(1000) });

export const PublishedGroupPolicyResponseSchema = z.strictObject({ ...PublishedPolicyResponseSchema.shape, department: z.string() });

export const CurrentGroupPolicyResponseSchema = z.strictObject({ ...CurrentPolicyResponseSchema.shape, department: z.string() });

export const GroupPolicyHistoryResponseSchema = z.strictObject({
  tier: TierSchema,
  department: z.string(),
  /** Newest first; a deletion is a row with `deleted: true` and `keyId: null` (it took a version of the tier's sequence). */
  versions: z.array(z.strictObject({ version: z.number().int(), keyId: z.string().nullable(), deleted: z.boolean(), createdAt: z.string(), createdBy: z.string() })),
});

export const GroupPolicyListResponseSchema = z.strictObject({
  tier: TierSchema,
  /** The departments of the tier with a current group policy, by name. */
  groups: z.array(z.strictObject({ department: z.string(), ...PolicyVersionSchema.shape })),
});

export const DeletedGroupPolicyResponseSchema = z.strictObject({ tier: TierSchema, department: z.string(), version: z.number().int(), deletedVersion: z.number().int() });

export const DeviceTierRequestSchema = z.strictObject({ tier: TierSchema });
export const DeviceTierResponseSchema = z.strictObject({ deviceId: DeviceIdSchema, tier: TierSchema, previous: TierSchema });

export const PolicyHistoryResponseSchema = z.strictObject({
  tier: TierSchema,
  /** Newest first. */
  versions: z.array(PolicyVersionSchema),
});

/**
 * The admin API for policies: publish a tier's policy (role admin; the server sets version,
 * issuedAt and tier, validates, signs; a published version is recorded in the admin trail), read the
 * current one, list its versions (any administrator). A rollback is
 * publishing an older document again: it becomes a new, higher version, so agents accept it.
 */
export const adminPolicyRoutes: FastifyPluginCallback<{ store: Store; auth: AdminAuth; policyKey: PolicySigningKey; clock: Clock }> = (
  app,
  { store, auth, policyKey, clock },
  done,
) => {
  requireAdmin(app, auth);
  const api = app.withTypeProvider<ZodTypeProvider>();
  const path = `${ApiPaths.adminPolicies}/:tier`;

  // No body schema: the document is validated by validatePolicy once the server's fields are set,
  // so its messages (rules with line and column) reach the administrator as they are.
  api.put(path, { config: { access: 'write' }, schema: { params: TierParamsSchema, response: { 200: PublishedPolicyResponseSchema } } }, async (request) => {
    const tier = tierOf(request.params.tier);
    const actor = actorOf(request).user;
    const now = clock();
    const result = await publishPolicy(store, policyKey, tier, request.body, now, actor);
    if (!result.ok) {
      switch (result.error.code) {
        case 'invalid-policy':
          throw new ApiHttpError('bad-request', result.error.message);
        case 'conflict':
          throw new Error(result.error.message);
        default:
          return assertNever(result.error.code, 'publish error');
      }
    }
    await recordAdminAction(store, now, actor, 'policy.published', {}, { tier, version: result.value.version, keyId: result.value.keyId, etag: result.value.etag });
    request.log.info({ tier, version: result.value.version, keyId: result.value.keyId }, 'policy published');
    return result.value;
  });

  api.get(path, { config: { access: 'read' }, schema: { params: TierParamsSchema, response: { 200: CurrentPolicyResponseSchema } } }, async (request) => {
    const tier = tierOf(request.params.tier);
    const current = await store.currentPolicy(tier);
    if (current === null) throw new ApiHttpError('not-found', `no policy published for tier ${tier}`);
    return { tier, ...versionOf(current), signed: toSignedPolicy(current), policy: policyDocument(current) };
  });

  api.get(`${path}/history`, { config: { access: 'read' }, schema: { params: TierParamsSchema, response: { 200: PolicyHistoryResponseSchema } } }, async (request) => {
    const tier = tierOf(request.params.tier);
    return { tier, versions: (await store.policyHistory(tier)).map(versionOf) };
  });

  // --- policies per group of terminals: (tier, department) -------------------------------------
  const groups = `${path}/groups`;
  const group = `${groups}/:department`;

  api.get(groups, { config: { access: 'read' }, schema: { params: TierParamsSchema, response: { 200: GroupPolicyListResponseSchema } } }, async (request) => {
    const tier = tierOf(request.params.tier);
    return { tier, groups: (await store.listGroupPolicies(tier)).map((head) => ({ department: head.department, ...versionOf(head) })) };
  });

  api.put(group, { config: { access: 'write' }, schema: { params: GroupParamsSchema, response: { 200: PublishedGroupPolicyResponseSchema } } }, async (request) => {
    const tier = tierOf(request.params.tier);
    const department = departmentOf(request.params.department);
    const actor = actorOf(request).user;
    const now = clock();
    const result = await publishGroupPolicy(store, policyKey, tier, department, request.body, now, actor);
    if (!result.ok) return failPublish(result.error.code, result.error.message);
    const { version, keyId, etag } = result.value;
    await recordAdminAction(store, now, actor, 'policy.group.published', {}, { tier, department, version, keyId, etag });
    request.log.info({ tier, version, keyId }, 'group policy published');
    return result.value;
  });

  api.get(group, { config: { access: 'read' }, schema: { params: GroupParamsSchema, response: { 200: CurrentGroupPolicyResponseSchema } } }, async (request) => {
    const tier = tierOf(request.params.tier);
    const department = departmentOf(request.params.department);
    const current = await store.currentGroupPolicy(tier, department);
    if (current === null) throw new ApiHttpError('not-found', `no policy for department ${JSON.stringify(department)} of tier ${tier}`);
    return { tier, department, ...versionOf(current), signed: toSignedPolicy(current), policy: policyDocument(current) };
  });

  api.get(`${group}/history`, { config: { access: 'read' }, schema: { params: GroupParamsSchema, response: { 200: GroupPolicyHistoryResponseSchema } } }, async (request) => {
    const tier = tierOf(request.params.tier);
    const department = departmentOf(request.params.department);
    return { tier, department, versions: await store.groupPolicyHistory(tier, department) };
  });

  api.delete(group, { config: { access: 'write' }, schema: { params: GroupParamsSchema, response: { 200: DeletedGroupPolicyResponseSchema } } }, async (request) => {
    const tier = tierOf(request.params.tier);
    const department = departmentOf(request.params.department);
    const actor = actorOf(request).user;
    const now = clock();
    const result = await deleteGroupPolicy(store, tier, department, now, actor);
    if (!result.ok) {
      if (result.error.code === 'not-found') throw new ApiHttpError('not-found', result.error.message);
      throw new Error(result.error.message);
    }
    await recordAdminAction(store, now, actor, 'policy.group.deleted', {}, { ...result.value });
    request.log.info({ tier, version: result.value.version }, 'group policy deleted');
    return result.value;
  });

  // --- the tier an administrator assigns to a terminal (which tier's policies it gets) ----------
  api.put(
    `${ApiPaths.adminDevices}/:id/tier`,
    { config: { access: 'write' }, schema: { params: DeviceParamsSchema, body: DeviceTierRequestSchema, response: { 200: DeviceTierResponseSchema } } },
    async (request) => {
      const deviceId = request.params.id;
      const { tier } = request.body;
      const changed = await store.setDeviceTier(deviceId, tier);
      if (changed === null) throw new ApiHttpError('not-found', 'unknown device');
      const actor = actorOf(request).user;
      await recordAdminAction(store, clock(), actor, 'device.tier', { deviceId }, { tier, previous: changed.previous });
      request.log.info({ deviceId, tier, previous: changed.previous }, 'device tier set');
      return { deviceId, tier, previous: changed.previous };
    },
  );

  done();
};

function failPublish(code: PublishErrorCode, message: string): never {
  switch (code) {
    case 'invalid-policy':
      throw new ApiHttpError('bad-request', message);
    case 'conflict':
      throw new Error(message);
    default:
      return assertNever(code, 'publish error');
  }
}

function departmentOf(text: string): string {
  const parsed = DepartmentSchema.safeParse(text);
  if (!parsed.success) {
    throw new ApiHttpError('bad-request', `department: ${parsed.error.issues[0]?.message ?? 'invalid'}`, { issues: [{ path: 'department', message: parsed.error.issues[0]?.message ?? 'invalid' }] });
  }
  return parsed.data;
}

function tierOf(text: string): Tier {
  if (!isTier(text)) throw new ApiHttpError('not-found', `no tier ${JSON.stringify(text)} (mynumber, lgwan or internet)`);
  return text;
}

function versionOf(head: PolicyHead): z.infer<typeof PolicyVersionSchema> {
  return { version: head.version, keyId: head.keyId, etag: policyEtag(head), createdAt: head.createdAt, createdBy: head.createdBy };
}
