import type { z } from 'zod';
import type { ApiError, ApiErrorCode } from '../../shared/api.js';
import { assertNever } from '../../shared/result.js';

/**
 * Every error the API answers has the body shape of `ApiErrorSchema` (shared/api.ts). Route code
 * throws `ApiHttpError`; the app's error handler turns it — and fastify's own errors for bad
 * client input — into that shape with the right status. Anything else is a bug: 500 `internal`,
 * with no detail sent to the client.
 */

type ErrorExtras = Omit<ApiError['error'], 'code' | 'message'>;
type Issue = NonNullable<ApiError['error']['issues']>[number];

/** The HTTP status each API error code is sent with. */
export function statusOf(code: ApiErrorCode): number {
  switch (code) {
    case 'bad-request':
    case 'invalid-json':
    case 'expired':
      return 400;
    case 'unauthorized':
    case 'token-invalid':
      return 401;
    case 'forbidden':
      return 403;
    case 'not-found':
      return 404;
    case 'conflict':
    case 'chain-gap':
    case 'chain-fork':
    case 'chain-bad-prev':
    case 'chain-bad-hash':
      return 409;
    case 'body-too-large':
      return 413;
    case 'unsupported-media-type':
      return 415;
    case 'rate-limited':
      return 429;
    case 'internal':
      return 500;
    default:
      return assertNever(code, 'API error code');
  }
}

/** An expected refusal, thrown by route code and answered by the error handler. */
export class ApiHttpError extends Error {
  readonly statusCode: number;

  constructor(
    readonly apiCode: ApiErrorCode,
    message: string,
    readonly extras: ErrorExtras = {},
  ) {
    super(message);
    this.name = 'ApiHttpError';
    this.statusCode = statusOf(apiCode);
  }
}

/** Most issues listed in one bad-request answer: a 500-entry batch of nonsense need not echo 500 of them. */
const MAX_ISSUES = 20;

/** A request part (body, query, params) that failed its zod schema. */
export class RequestValidationError extends Error {
  readonly statusCode = 400;
  readonly issues: readonly Issue[];

  constructor(part: string, zodIssues: readonly z.core.$ZodIssue[]) {
    super(`request ${part} is invalid`);
    this.name = 'RequestValidationError';
    this.issues = zodIssues.flatMap(toIssues).slice(0, MAX_ISSUES);
  }
}

function toIssues(issue: z.core.$ZodIssue): Issue[] {
  if (issue.code === 'unrecognized_keys') {
    // One issue per unknown field, at the field's own path: "entries[0].extra: unknown field".
    return issue.keys.map((key) => ({ path: formatPath([...issue.path, key]), message: 'unknown field' }));
  }
  return [{ path: formatPath(issue.path), message: issue.message }];
}

/** `['entries', 0, 'seq']` → `entries[0].seq`; the root is `(root)`. */
export function formatPath(path: readonly PropertyKey[]): string {
  if (path.length === 0) return '(root)';
  let out = '';
  for (const key of path) {
    if (typeof key === 'number') out += `[${key}]`;
    else out += out === '' ? String(key) : `.${String(key)}`;
  }
  return out;
}

/** The body of an error answer. */
export function apiErrorBody(code: ApiErrorCode, message: string, extras: ErrorExtras = {}): ApiError {
  return { error: { code, message, ...extras } };
}

/**
 * Maps anything thrown while handling a request to a status and an `ApiError` body. Fastify's
 * parser errors carry stable `code`s; other client errors (4xx) keep their status.
 */
export function toApiError(error: unknown): { statusCode: number; body: ApiError } {
  if (error instanceof ApiHttpError) {
    return { statusCode: error.statusCode, body: apiErrorBody(error.apiCode, error.message, error.extras) };
  }
  if (error instanceof RequestValidationError) {
    return { statusCode: 400, body: apiErrorBody('bad-request', error.message, { issues: [...error.issues] }) };
  }
  const { code, statusCode } = (error ?? {}) as { code?: unknown; statusCode?: unknown };
  switch (code) {
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return refusal('invalid-json', 'request body is not valid JSON');
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return refusal('body-too-large', 'request body is too large');
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return refusal('unsupported-media-type', 'request body must be application/json');
    default:
      break;
  }
  if (typeof statusCode === 'number' && statusCode >= 400 && statusCode < 500) {
    // Fastify's own client errors (content-length mismatch, aborted upload, …): their messages
    // are fixed strings of fastify's, safe to pass on.
    const message = error instanceof Error ? error.message : 'bad request';
    return { statusCode, body: apiErrorBody(codeForStatus(statusCode), message) };
  }
  return refusal('internal', 'internal error');
}

function refusal(code: ApiErrorCode, message: string): { statusCode: number; body: ApiError } {
  return { statusCode: statusOf(code), body: apiErrorBody(code, message) };
}

function codeForStatus(status: number): ApiErrorCode {
  switch (status) {
    case 401:
      return 'unauthorized';
    case 403:
      return 'forbidden';
    case 404:
      return 'not-found';
    case 413:
      return 'body-too-large';
    case 415:
      return 'unsupported-media-type';
    case 429:
      return 'rate-limited';
    default:
      return 'bad-request';
  }
}
