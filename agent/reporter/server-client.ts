import { z } from 'zod';
import {
  ApiErrorSchema,
  ApiPaths,
  EnrollResponseSchema,
  EventsBatchResponseSchema,
  HeartbeatResponseSchema,
  SignedPolicySchema,
  type ApiError,
  type EnrollRequest,
  type EnrollResponse,
  type EventsBatchResponse,
  type HeartbeatRequest,
  type HeartbeatResponse,
  type SignedPolicy,
  UserCredentialBundleSchema,
  type UserCredentialBundle,
} from '../../shared/api.js';
import type { JournalEntry } from '../../shared/journal.js';
import { DeviceRequestSchema, type DeviceRequest, type DeviceRequestSubmission } from '../../shared/requests.js';
import { ServerCertificateRejected, transportFor, type CertificateRejection, type TlsSettings, type Transport } from './transport.js';

/** How a call to the server ended: an answer, a refusal the server explained, or no answer at all. */
export type CallResult<T> =
  | { kind: 'ok'; value: T }
  | { kind: 'refused'; status: number; error: ApiError['error'] }
  | { kind: 'unreachable'; message: string };

const REQUEST_TIMEOUT_MS = 15_000;

/** How to reach the server safely (the installer's config): TLS trust, plain HTTP in labs, and who hears of a refused certificate. */
export interface ServerConnectionOptions {
  readonly tls?: TlsSettings | null;
  /** Plain `http:` to a host other than this machine (labs only). */
  readonly allowInsecureHttp?: boolean;
  /** Called when the server's certificate was refused (nothing was sent); the call then ends `unreachable`. */
  readonly onCertificateRejected?: (rejection: CertificateRejection) => Promise<void> | void;
}

/**
 * The agent's side of the /api/v1 protocol. Every answer is validated with the shared schema: a
 * server (or something pretending to be one) that answers nonsense is treated as unreachable.
 * `https:` URLs go through the verified TLS transport (transport.ts); a refused certificate or a
 * refused URL (plain HTTP to another machine) sends nothing and ends `unreachable`, like an outage.
 */
export class ServerClient {
  private readonly transport: Transport;

  constructor(
    private readonly baseUrl: string,
    private readonly connection: ServerConnectionOptions = {},
  ) {
    this.transport = transportFor(baseUrl, connection);
  }

  enroll(body: EnrollRequest): Promise<CallResult<EnrollResponse>> {
    return this.post(ApiPaths.enroll, body, null, EnrollResponseSchema);
  }

  heartbeat(credential: string, body: HeartbeatRequest): Promise<CallResult<HeartbeatResponse>> {
    return this.post(ApiPaths.heartbeat, body, credential, HeartbeatResponseSchema);
  }

  sendEvents(credential: string, entries: JournalEntry[]): Promise<CallResult<EventsBatchResponse>> {
    return this.post(ApiPaths.events, { entries }, credential, EventsBatchResponseSchema);
  }

  /** The signed policy for this terminal's tier; `refused` with status 404 when none is published. */
  policy(credential: string): Promise<CallResult<SignedPolicy>> {
    return this.call('GET', ApiPaths.policy, undefined, credential, SignedPolicySchema);
  }

  /** Stores a user's enrolment on the server (roaming). */
  putCredentials(credential: string, bundle: UserCredentialBundle): Promise<CallResult<unknown>> {
    return this.call('PUT', ApiPaths.credentials, bundle, credential, z.unknown());
  }

  /** A user's enrolment from another terminal of this tier; `refused` 404 when there is none. */
  lookupCredentials(credential: string, user: string): Promise<CallResult<UserCredentialBundle>> {
    return this.post(ApiPaths.credentialsLookup, { user }, credential, UserCredentialBundleSchema);
  }

  /** Delivers a device request (201 new, 200 a resend). */
  submitRequest(credential: string, request: DeviceRequestSubmission): Promise<CallResult<unknown>> {
    return this.post(ApiPaths.requests, request, credential, z.unknown());
  }

  /** This terminal's requests and their states. */
  listRequests(credential: string): Promise<CallResult<{ requests: DeviceRequest[] }>> {
    return this.call('GET', ApiPaths.requests, undefined, credential, z.strictObject({ requests: z.array(DeviceRequestSchema) }));
  }

  private post<T>(route: string, body: unknown, credential: string | null, schema: z.ZodType<T>): Promise<CallResult<T>> {
    return this.call('POST', route, body, credential, schema);
  }

  private async call<T>(method: 'GET' | 'POST' | 'PUT', route: string, body: unknown, credential: string | null, schema: z.ZodType<T>): Promise<CallResult<T>> {
    const headers: Record<string, string> = {};
    if (method !== 'GET') headers['content-type'] = 'application/json';
    if (credential !== null) headers.authorization = `Bearer ${credential}`;
    let response: { status: number; text: string };
    try {
      response = await this.transport({
        method,
        url: new URL(route, this.baseUrl),
        headers,
        body: method === 'GET' ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      });
    } catch (error) {
      if (error instanceof ServerCertificateRejected) await this.connection.onCertificateRejected?.(error.rejection);
      return { kind: 'unreachable', message: describeNetworkError(error) };
    }
    const json = safeJson(response.text);
    if (response.status >= 200 && response.status < 300) {
      const parsed = schema.safeParse(json);
      return parsed.success
        ? { kind: 'ok', value: parsed.data }
        : { kind: 'unreachable', message: `server answered ${route} with an unexpected body` };
    }
    const apiError = ApiErrorSchema.safeParse(json);
    if (apiError.success) return { kind: 'refused', status: response.status, error: apiError.data.error };
    // A proxy's HTML error page or a 5xx without our error shape: retry later like an outage.
    return { kind: 'unreachable', message: `HTTP ${response.status} from ${route}` };
  }
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function describeNetworkError(error: unknown): string {
  if (error instanceof Error) {
    const cause = (error as Error & { cause?: { code?: string } }).cause;
    if (cause?.code) return `${error.message} (${cause.code})`;
    // node:https errors carry the code themselves (fetch's wrap it in `cause`).
    const code = (error as NodeJS.ErrnoException).code;
    return code && !error.message.includes(code) ? `${error.message} (${code})` : error.message;
  }
  return String(error);
}
