import type { FastifyPluginCallback } from 'fastify';
import { z } from 'zod';
import { ApiPaths } from '../../shared/api.js';
import type { ZodTypeProvider } from '../http/zod-schemas.js';

export const HealthResponseSchema = z.strictObject({ ok: z.literal(true), version: z.string() });

/** `GET /api/v1/health`: liveness for load balancers and the CLI; needs no credential and touches no database. */
export const healthRoutes: FastifyPluginCallback<{ version: string }> = (app, options, done) => {
  app.withTypeProvider<ZodTypeProvider>().get(
    ApiPaths.health,
    { schema: { response: { 200: HealthResponseSchema } } },
    (_request, reply) => {
      void reply.send({ ok: true, version: options.version });
    },
  );
  done();
};
