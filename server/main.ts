import type { AddressInfo } from 'node:net';
import { createServer } from './app.js';
import { createOperationalLogger, fastifyLoggerFor } from './logging.js';
import type { TlsFiles } from './tls.js';

/**
 * The server's composition root (CONVENTIONS.md, "Lifecycle"): builds the operational logger, the
 * store and the app, and listens. `sekimori-server start` is its only caller; tests build the app
 * with `createServer` directly.
 */

export interface StartOptions {
  readonly dataDir: string;
  readonly host: string;
  /** 0 = any free port. */
  readonly port: number;
  /** winston level for operational logs (default `info`). */
  readonly logLevel?: string;
  /** Serve HTTPS with this certificate and key (`loadTlsFiles` in tls.ts); absent or null: plain HTTP. */
  readonly tls?: TlsFiles | null;
}

export interface RunningServer {
  /** `http://HOST:PORT` (`https://` with TLS), with the port actually bound. */
  readonly url: string;
  readonly adminTokenFile: string;
  /** Stops listening, finishes requests in flight, closes the database. Idempotent. */
  close(): Promise<void>;
}

/** Expected failure to listen (port in use, no permission, no such address): message for people. */
export class ListenError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ListenError';
  }
}

/** Listen errors that are the operator's environment, not a bug. */
const EXPECTED_LISTEN_ERRORS = new Set(['EADDRINUSE', 'EACCES', 'EADDRNOTAVAIL', 'ENOTFOUND', 'EAI_AGAIN']);

/**
 * Starts the server on `host:port` with data in `dataDir`. Throws DataDirError, StoreOpenError or
 * ListenError for expected problems.
 */
export async function startServer(options: StartOptions): Promise<RunningServer> {
  const log = createOperationalLogger(options.logLevel ?? 'info');
  const lifecycle = log.child({ subsystem: 'server' });
  const tls = options.tls ?? null;
  const server = await createServer({ dataDir: options.dataDir, logger: fastifyLoggerFor(log.child({ subsystem: 'http' })), tls });
  try {
    await server.app.listen({ host: options.host, port: options.port });
  } catch (error) {
    await server.close();
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== undefined && EXPECTED_LISTEN_ERRORS.has(code)) {
      throw new ListenError(`cannot listen on ${options.host}:${options.port}: ${(error as Error).message}`, { cause: error });
    }
    throw error;
  }
  const { port } = server.app.server.address() as AddressInfo;
  const url = `${tls === null ? 'http' : 'https'}://${urlHost(options.host)}:${port}`;
  lifecycle.info('server started', { url, dataDir: options.dataDir, tls: tls !== null });
  let closing: Promise<void> | undefined;
  return {
    url,
    adminTokenFile: server.adminTokenFile,
    close: () => {
      closing ??= server.close().then(() => {
        lifecycle.info('server stopped');
      });
      return closing;
    },
  };
}

/** IPv6 literals go in brackets in a URL. */
function urlHost(host: string): string {
  return host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
}
