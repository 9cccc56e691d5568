import type { FastifySchemaCompiler, FastifySerializerCompiler, FastifyTypeProvider } from 'fastify';
import type { z } from 'zod';
import { RequestValidationError } from './api-error.js';

/**
 * Routes declare the zod schemas of shared/api.ts directly (`schema: { body: EnrollRequestSchema }`),
 * so the one schema library of the project (CONVENTIONS.md, "Boundaries") validates every request
 * and types every handler. This is the small piece fastify needs for that — a type provider and
 * compilers — instead of a second schema language (JSON Schema / ajv) kept in step by hand.
 */

/** Types `request.body` / `query` / `params` from the route's zod schemas, and `reply.send` from its response schemas. */
export interface ZodTypeProvider extends FastifyTypeProvider {
  readonly validator: this['schema'] extends z.ZodType ? z.output<this['schema']> : unknown;
  readonly serializer: this['schema'] extends z.ZodType ? z.input<this['schema']> : unknown;
}

/** Validates a request part with its zod schema; failures become `RequestValidationError` (400 bad-request). */
export const zodValidatorCompiler: FastifySchemaCompiler<z.ZodType> =
  ({ schema, httpPart }) =>
  (data: unknown) => {
    const result = schema.safeParse(data);
    return result.success
      ? { value: result.data }
      : { error: new RequestValidationError(partName(httpPart), result.error.issues) };
  };

/**
 * Serialises a response after checking it against its zod schema: a handler that strays from the
 * contract is a bug, answered 500 rather than sent to an agent that would refuse it anyway.
 */
export const zodSerializerCompiler: FastifySerializerCompiler<z.ZodType> =
  ({ schema }) =>
  (data: unknown) =>
    JSON.stringify(schema.parse(data));

function partName(httpPart: string | undefined): string {
  if (httpPart === 'querystring') return 'query';
  if (httpPart === 'params') return 'path';
  return httpPart ?? 'body';
}
