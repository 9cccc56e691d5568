import type { FastifyPluginCallback } from 'fastify';
import { z } from 'zod';
import { ApiPaths, SignedPolicySchema } from '../../shared/api.js';
import { TierSchema, type Tier } from '../../shared/policy.js';
import { assertNever } from '../../shared/result.js';
import { recordAdminAction } from '../admin-trail.js';
import type { Clock } from '../clock.js';
import { ApiHttpError } from '../http/api-error.js';
import { actorOf, requireAdmin, type AdminAuth } from '../http/admin-auth.js';
import type { ZodTypeProvider } from '../http/zod-schemas.js';
import { isTier, policyDocument, policyEtag, publishPolicy, toSignedPolicy } from '../policies.js';
import type { PolicySigningKey } from '../policy-key.js';
import type { PolicyHead, Store } from '../store.js';

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

  done();
};

function tierOf(text: string): Tier {
  if (!isTier(text)) throw new ApiHttpError('not-found', `no tier ${JSON.stringify(text)} (mynumber, lgwan or internet)`);
  return text;
}

function versionOf(head: PolicyHead): z.infer<typeof PolicyVersionSchema> {
  return { version: head.version, keyId: head.keyId, etag: policyEtag(head), createdAt: head.createdAt, createdBy: head.createdBy };
}
