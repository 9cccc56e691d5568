import type { FastifyInstance } from 'fastify';
import { ApiHttpError } from './api-error.js';

/**
 * Deepest nesting of arrays and objects a request body may have. V8 parses any depth (its JSON
 * parser is iterative), but the schema check and canonical JSON recurse: a 4 MB body of `[[[[…`
 * would overflow the stack there and turn client input into a 500. The agent protocol needs about
 * ten levels (body → entries → entry → data → a few levels of event data).
 */
export const MAX_JSON_DEPTH = 64;

/** Whether `value` nests arrays/objects deeper than `limit`. Iterative, so it cannot overflow itself. */
export function nestsDeeperThan(value: unknown, limit: number): boolean {
  const stack: [unknown, number][] = [[value, 1]];
  for (let item = stack.pop(); item !== undefined; item = stack.pop()) {
    const [current, depth] = item;
    if (current === null || typeof current !== 'object') continue;
    if (depth > limit) return true;
    for (const child of Object.values(current)) {
      if (child !== null && typeof child === 'object') stack.push([child, depth + 1]);
    }
  }
  return false;
}

/** Refuses (400 bad-request) bodies nested deeper than MAX_JSON_DEPTH, after parsing and before the schemas run. */
export function limitJsonDepth(app: FastifyInstance): void {
  app.addHook('preValidation', (request, _reply, done) => {
    if (nestsDeeperThan(request.body, MAX_JSON_DEPTH)) {
      done(new ApiHttpError('bad-request', `request body nests deeper than ${MAX_JSON_DEPTH} levels`));
      return;
    }
    done();
  });
}
