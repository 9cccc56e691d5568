import type { AdminPaths, ApiError, ApiPaths } from '../../shared/api.js';

/**
 * The dashboard's calls to the admin API (same origin; the session cookie goes along by itself).
 * Every POST/PUT/DELETE carries the session's CSRF token in `x-sekimori-csrf`. Only types come
 * from shared/api.ts (its zod schemas never load in the page); the paths below are checked against
 * the shared ones by the compiler (`satisfies`).
 */

export const paths = {
  login: '/api/v1/admin/login',
  logout: '/api/v1/admin/logout',
  session: '/api/v1/admin/session',
  password: '/api/v1/admin/session/password',
  accounts: '/api/v1/admin/accounts',
  terminals: '/api/v1/admin/terminals',
  recoveryDecode: '/api/v1/admin/recovery/decode',
  selfcheckReport: '/api/v1/admin/reports/selfcheck',
} as const satisfies typeof AdminPaths;

export const apiPaths = {
  adminDevices: '/api/v1/admin/devices',
  adminPolicies: '/api/v1/admin/policies',
  adminRecovery: '/api/v1/admin/recovery',
  adminUsers: '/api/v1/admin/users',
  adminActions: '/api/v1/admin/actions',
  adminRequests: '/api/v1/admin/requests',
} as const satisfies Pick<typeof ApiPaths, 'adminDevices' | 'adminPolicies' | 'adminRecovery' | 'adminUsers' | 'adminActions' | 'adminRequests'>;

/** The audit export (AUDIT_EVENTS_CSV_PATH in server/ops/audit-export.ts; `?from=&to=` JST dates, optional `department`). */
export const AUDIT_EVENTS_CSV = '/api/v1/admin/audit/events.csv';

/** Must equal ADMIN_CSRF_HEADER in shared/api.ts (a test compares them). */
export const CSRF_HEADER = 'x-sekimori-csrf';

/** A refused call: the API's error body, or a network failure (`status` 0, code `network`). */
export class ApiFailure extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly issues: readonly { readonly path: string; readonly message: string }[] = [],
    readonly groups: readonly number[] = [],
    /** Seconds, from Retry-After (429). */
    readonly retryAfter: number | null = null,
  ) {
    super(message);
    this.name = 'ApiFailure';
  }
}

export type Query = Readonly<Record<string, string | number | undefined>>;

export class ApiClient {
  /** The session's CSRF token (from the login answer or GET /session). */
  csrfToken: string | null = null;
  /** Called on a 401 from anything but the login itself (the session ended). */
  onUnauthorized: (failure: ApiFailure) => void = () => undefined;

  get<T>(path: string, query: Query = {}): Promise<T> {
    return this.call<T>('GET', withQuery(path, query));
  }

  post<T>(path: string, body?: unknown): Promise<T> {
    return this.call<T>('POST', path, body);
  }

  put<T>(path: string, body: unknown): Promise<T> {
    return this.call<T>('PUT', path, body);
  }

  delete<T>(path: string, query: Query = {}): Promise<T> {
    return this.call<T>('DELETE', withQuery(path, query));
  }

  private async call<T>(method: string, url: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (method !== 'GET' && this.csrfToken !== null) headers[CSRF_HEADER] = this.csrfToken;
    if (body !== undefined) headers['content-type'] = 'application/json';
    let response: Response;
    try {
      response = await fetch(url, { method, headers, credentials: 'same-origin', cache: 'no-store', body: body === undefined ? undefined : JSON.stringify(body) });
    } catch (error) {
      throw new ApiFailure(0, 'network', error instanceof Error ? error.message : String(error));
    }
    if (response.status === 204) return undefined as T;
    const payload: unknown = await response.json().catch(() => null);
    if (response.ok) return payload as T;
    const error = (payload as Partial<ApiError> | null)?.error;
    const retry = Number(response.headers.get('retry-after'));
    const failure = new ApiFailure(
      response.status,
      typeof error?.code === 'string' ? error.code : 'unknown',
      typeof error?.message === 'string' ? error.message : `HTTP ${response.status}`,
      Array.isArray(error?.issues) ? error.issues : [],
      Array.isArray(error?.groups) ? error.groups : [],
      Number.isFinite(retry) && retry > 0 ? retry : null,
    );
    if (response.status === 401 && url !== paths.login) this.onUnauthorized(failure);
    throw failure;
  }
}

/** `path?k=v&…` with undefined and empty values left out. */
export function withQuery(path: string, query: Query): string {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (value !== undefined && value !== '') params.set(key, String(value));
  }
  const text = params.toString();
  return text === '' ? path : `${path}?${text}`;
}
