import https from 'node:https';
import net from 'node:net';
import tls from 'node:tls';
import { chainPins, matchesAnyPin, parsePin } from './tls-pins.js';

/**
 * How the agent's requests reach the server. `https:` goes through `node:https` on a TLS socket
 * this module opens and verifies first (the installer's CA instead of the public roots when given,
 * the normal host name check, and the SPKI pins): a request — and with it the enrolment token or
 * the device credential — is written only to a connection that passed all three. `http:` keeps
 * `fetch` for loopback (development, tests) and for labs that set `allowInsecureHttp`.
 */

/** The installer's `tls` settings (AgentConfigSchema). */
export interface TlsSettings {
  /** PEM of the municipality's CA: replaces Node's public root store for this connection. */
  readonly ca?: string;
  /** `sha256/<base64>` SPKI pins: the leaf or a certificate of the presented chain must match one. */
  readonly pins?: readonly string[];
}

export interface TransportRequest {
  readonly method: 'GET' | 'POST' | 'PUT';
  readonly url: URL;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string | undefined;
  readonly signal: AbortSignal;
}

export interface TransportAnswer {
  readonly status: number;
  readonly text: string;
}

/** Sends one request; throws on any failure to get an answer (refused connection, timeout, bad certificate). */
export type Transport = (request: TransportRequest) => Promise<TransportAnswer>;

/** Why the server's certificate was refused; journaled once per distinct value (see ServerCertificateAlarm). */
export interface CertificateRejection {
  /** `host:port` as in the server URL. */
  readonly host: string;
  /** `pin-mismatch`: trusted but no pin matched; `hostname-mismatch`; `untrusted`: no trusted chain (code says why). */
  readonly reason: 'pin-mismatch' | 'hostname-mismatch' | 'untrusted';
  /** Node's / OpenSSL's code (`SELF_SIGNED_CERT_IN_CHAIN`, `ERR_TLS_CERT_ALTNAME_INVALID`, …). */
  readonly code: string;
  /** The leaf's SPKI pin; null when Node refused the chain before the certificate could be read. */
  readonly presentedPin: string | null;
  /** Pins of the presented chain, leaf first (empty when unreadable). */
  readonly chainPins: readonly string[];
}

/** The server's certificate was refused: nothing was sent on that connection. */
export class ServerCertificateRejected extends Error {
  constructor(readonly rejection: CertificateRejection) {
    super(`server certificate rejected (${rejection.reason}, ${rejection.code}) for ${rejection.host}${rejection.presentedPin ? `: presented ${rejection.presentedPin}` : ''}; nothing was sent`);
    this.name = 'ServerCertificateRejected';
  }
}

/** 127.0.0.0/8 and ::1 (BlockList also matches IPv4-mapped IPv6 such as ::ffff:7f00:1). */
const LOOPBACK = new net.BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK.addAddress('::1', 'ipv6');

/** Whether a URL host name is this machine (plain HTTP stays allowed to it: development and tests). */
export function isLoopbackHost(hostname: string): boolean {
  const host = hostname.startsWith('[') && hostname.endsWith(']') ? hostname.slice(1, -1) : hostname;
  if (host.toLowerCase() === 'localhost') return true;
  if (net.isIPv4(host)) return LOOPBACK.check(host, 'ipv4');
  if (net.isIPv6(host)) return LOOPBACK.check(host, 'ipv6');
  return false;
}

/**
 * Why the agent must not talk to `serverUrl` this way, or null: plain `http:` to another machine
 * (unless `allowInsecureHttp`, labs only), or TLS settings with an `http:` URL (they would protect nothing).
 */
export function serverUrlProblem(serverUrl: string, options: { readonly allowInsecureHttp?: boolean; readonly tls?: TlsSettings | null }): string | null {
  let url: URL;
  try {
    url = new URL(serverUrl);
  } catch {
    return `server URL ${JSON.stringify(serverUrl.slice(0, 200))} is not a URL`;
  }
  if (url.protocol === 'https:') return null;
  if (url.protocol !== 'http:') return `server URL ${url.origin}: only https:// (or http:// to this machine) is supported`;
  if (options.tls?.ca !== undefined || (options.tls?.pins?.length ?? 0) > 0) {
    return `server URL ${url.origin} is plain http:// but tls (ca/pins) is configured: use https://`;
  }
  if (!isLoopbackHost(url.hostname) && options.allowInsecureHttp !== true) {
    return `server URL ${url.origin} is plain http:// to another machine: the enrolment token, the device credential and the journal would cross the network unencrypted. Use https:// (sekimori-server start --tls-cert/--tls-key), or set "allowInsecureHttp": true in the config (labs only)`;
  }
  return null;
}

/** The transport for `serverUrl`: TLS with the installer's settings, fetch for allowed plain HTTP, else one that refuses. */
export function transportFor(serverUrl: string, options: { readonly allowInsecureHttp?: boolean; readonly tls?: TlsSettings | null }): Transport {
  const problem = serverUrlProblem(serverUrl, options);
  if (problem !== null) return refusing(problem);
  if (new URL(serverUrl).protocol !== 'https:') return fetchTransport;
  try {
    return tlsTransport(options.tls ?? {});
  } catch (error) {
    return refusing(error instanceof Error ? error.message : String(error));
  }
}

/** A transport that sends nothing and fails with `message`. */
function refusing(message: string): Transport {
  return () => Promise.reject(new Error(message));
}

/** Plain HTTP through the global fetch (as before TLS existed). */
export const fetchTransport: Transport = async ({ method, url, headers, body, signal }) => {
  const response = await fetch(url, { method, headers, body, signal });
  return { status: response.status, text: await response.text() };
};

/** Largest answer read (the policy is at most 4 MiB); a larger one is treated as no answer. */
const MAX_ANSWER_BYTES = 16 * 1024 * 1024;

/** Certificate verification errors Node reports (OpenSSL's X509_V_ERR_* names and Node's own host name error). */
const VERIFY_ERROR_CODES = new Set([
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_CRL',
  'UNABLE_TO_DECRYPT_CERT_SIGNATURE',
  'UNABLE_TO_DECRYPT_CRL_SIGNATURE',
  'UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY',
  'CERT_SIGNATURE_FAILURE',
  'CRL_SIGNATURE_FAILURE',
  'CERT_NOT_YET_VALID',
  'CERT_HAS_EXPIRED',
  'CRL_NOT_YET_VALID',
  'CRL_HAS_EXPIRED',
  'ERROR_IN_CERT_NOT_BEFORE_FIELD',
  'ERROR_IN_CERT_NOT_AFTER_FIELD',
  'ERROR_IN_CRL_LAST_UPDATE_FIELD',
  'ERROR_IN_CRL_NEXT_UPDATE_FIELD',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'CERT_CHAIN_TOO_LONG',
  'CERT_REVOKED',
  'INVALID_CA',
  'PATH_LENGTH_EXCEEDED',
  'INVALID_PURPOSE',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'HOSTNAME_MISMATCH',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

const PIN_MISMATCH = 'ERR_SEKIMORI_PIN_MISMATCH';

/**
 * HTTPS through `node:https` on a socket verified before anything is written: `tls.connect` with
 * `ca` (replacing the public roots when set), `rejectUnauthorized`, and a `checkServerIdentity`
 * that runs Node's host name check and then the pin check. Only after `secureConnect` (which Node
 * emits only for a verified connection) is the request created on that socket; one connection per
 * request (the agent sends a few a minute). Invalid pins are refused by the config schema already.
 */
export function tlsTransport(settings: TlsSettings): Transport {
  const pins = (settings.pins ?? []).map((pin) => {
    const digest = parsePin(pin);
    if (digest === null) throw new Error(`tls.pins: ${JSON.stringify(pin.slice(0, 80))} is not a pin (sha256/<base64>)`);
    return digest;
  });
  return async (request) => {
    const socket = await connectVerified(request.url, settings.ca, pins, request.signal);
    try {
      return await exchange(socket, request);
    } finally {
      socket.destroy();
    }
  };
}

/** The URL's host name as a socket wants it (IPv6 without brackets). */
function socketHost(url: URL): string {
  return url.hostname.startsWith('[') && url.hostname.endsWith(']') ? url.hostname.slice(1, -1) : url.hostname;
}

function connectVerified(url: URL, ca: string | undefined, pins: readonly Buffer[], signal: AbortSignal): Promise<tls.TLSSocket> {
  const host = socketHost(url);
  const port = url.port === '' ? 443 : Number(url.port);
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(signal.reason as Error);
      return;
    }
    /** Pins of the chain the server presented (for the journal entry when it is refused). */
    let presented: string[] = [];
    const socket = tls.connect({
      host,
      port,
      // SNI carries names, never addresses.
      servername: net.isIP(host) === 0 ? host : undefined,
      ca,
      minVersion: 'TLSv1.2',
      ALPNProtocols: ['http/1.1'],
      rejectUnauthorized: true,
      checkServerIdentity: (hostname, certificate) => {
        presented = chainPins(certificate);
        const mismatch = tls.checkServerIdentity(hostname, certificate);
        if (mismatch !== undefined) return mismatch;
        if (pins.length > 0 && !matchesAnyPin(presented, pins)) {
          return Object.assign(new Error(`no pinned key in the server's chain (presented ${presented.join(', ')})`), { code: PIN_MISMATCH });
        }
        return undefined;
      },
    });
    // tls.connect verifies in its own 'secure' listener (chain, then checkServerIdentity) and destroys
    // the socket on failure; a listener put before it can still read what an untrusted server
    // presented. It only reads: nothing is written before secureConnect. (An undocumented event: if
    // a Node version stops emitting it, an untrusted chain is journaled without its pin.)
    socket.prependOnceListener('secure', () => {
      try {
        presented = chainPins(socket.getPeerCertificate(true));
      } catch {
        presented = [];
      }
    });
    const cleanup = (): void => {
      signal.removeEventListener('abort', onAbort);
      socket.off('error', onError);
      socket.off('secureConnect', onSecure);
    };
    const onAbort = (): void => {
      cleanup();
      socket.destroy();
      reject(signal.reason as Error);
    };
    const onError = (error: NodeJS.ErrnoException): void => {
      cleanup();
      socket.destroy();
      const code = typeof error.code === 'string' ? error.code : '';
      if (code === PIN_MISMATCH || VERIFY_ERROR_CODES.has(code)) {
        const reason = code === PIN_MISMATCH ? 'pin-mismatch' : code === 'ERR_TLS_CERT_ALTNAME_INVALID' || code === 'HOSTNAME_MISMATCH' ? 'hostname-mismatch' : 'untrusted';
        reject(new ServerCertificateRejected({ host: url.host, reason, code, presentedPin: presented[0] ?? null, chainPins: presented }));
      } else {
        reject(error);
      }
    };
    const onSecure = (): void => {
      cleanup();
      // Belt and braces: Node emits secureConnect for a refused chain only without rejectUnauthorized.
      if (!socket.authorized) {
        socket.destroy();
        reject(new ServerCertificateRejected({ host: url.host, reason: 'untrusted', code: String(socket.authorizationError), presentedPin: presented[0] ?? null, chainPins: presented }));
        return;
      }
      // An error after this point belongs to the request on this socket.
      socket.on('error', () => undefined);
      resolve(socket);
    };
    signal.addEventListener('abort', onAbort, { once: true });
    socket.once('error', onError);
    socket.once('secureConnect', onSecure);
  });
}

/** One HTTP/1.1 request on the verified socket; resolves with the status and the whole body. */
function exchange(socket: tls.TLSSocket, { method, url, headers, body, signal }: TransportRequest): Promise<TransportAnswer> {
  return new Promise((resolve, reject) => {
    const request = https.request({
      method,
      host: socketHost(url),
      port: url.port === '' ? 443 : Number(url.port),
      path: `${url.pathname}${url.search}`,
      headers: body === undefined ? headers : { ...headers, 'content-length': String(Buffer.byteLength(body)) },
      // The socket verified above; https.request would otherwise open (and verify) its own.
      createConnection: () => socket,
    });
    const onAbort = (): void => {
      request.destroy(signal.reason as Error);
    };
    signal.addEventListener('abort', onAbort, { once: true });
    const finish = (settle: () => void): void => {
      signal.removeEventListener('abort', onAbort);
      settle();
    };
    request.once('error', (error) => finish(() => reject(error)));
    request.once('response', (response) => {
      const chunks: Buffer[] = [];
      let size = 0;
      response.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > MAX_ANSWER_BYTES) {
          request.destroy(new Error(`answer larger than ${MAX_ANSWER_BYTES} bytes`));
          return;
        }
        chunks.push(chunk);
      });
      response.once('error', (error) => finish(() => reject(error)));
      response.once('close', () => {
        if (!response.complete) finish(() => reject(new Error('the connection closed before the whole answer arrived')));
      });
      response.once('end', () => finish(() => resolve({ status: response.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') })));
    });
    request.end(body);
  });
}
