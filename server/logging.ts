import { format as formatMessage } from 'node:util';
import type { FastifyBaseLogger } from 'fastify';
import winston from 'winston';

/**
 * Operational logs (not the audit journal): winston, JSON lines on stderr (stdout belongs to the
 * CLI's machine-readable output), one child logger per subsystem (`subsystem: 'http'`, `'store'`).
 *
 * Secrets never reach a log line: every field named like a secret (authorization, credential,
 * token, …) is replaced by `[redacted]` at any depth, whatever code logged it.
 */

export const REDACTED = '[redacted]';

/** Field names (lower-cased) whose values are secrets. */
const SECRET_FIELDS = new Set([
  'authorization',
  'cookie',
  'credential',
  'token',
  'admintoken',
  'secret',
  'password',
  // Factors and recovery keys (roaming credentials, set-recovery-key commands, recovery responses).
  'pin',
  'totpsecret',
  'recoverykey',
  'key',
  'response',
]);

/** Deepest nesting the redactor walks; deeper values are replaced rather than risked. */
const MAX_REDACT_DEPTH = 8;

/** A copy of `value` with every secret-named field replaced by `[redacted]`. */
export function redactSecrets(value: unknown, depth = 0): unknown {
  if (value === null || typeof value !== 'object') return value;
  if (depth >= MAX_REDACT_DEPTH) return '[too deep]';
  if (Array.isArray(value)) return value.map((item) => redactSecrets(item, depth + 1));
  if (value instanceof Error) return { name: value.name, message: value.message, stack: value.stack };
  const out: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) {
    out[key] = SECRET_FIELDS.has(key.toLowerCase()) ? REDACTED : redactSecrets(item, depth + 1);
  }
  return out;
}

const redactFormat = winston.format((info) => {
  // Mutate in place: winston keeps its own state under symbol keys of this object.
  for (const key of Object.keys(info)) {
    info[key] = SECRET_FIELDS.has(key.toLowerCase()) ? REDACTED : redactSecrets(info[key]);
  }
  return info;
});

/**
 * The server's root operational logger: JSON lines at `level` (winston npm levels), to stderr or to
 * `destination` (tests read what was logged).
 */
export function createOperationalLogger(level = 'info', destination?: NodeJS.WritableStream): winston.Logger {
  return winston.createLogger({
    level,
    format: winston.format.combine(redactFormat(), winston.format.timestamp(), winston.format.json()),
    defaultMeta: { service: 'sekimori-server' },
    transports: [
      destination
        ? new winston.transports.Stream({ stream: destination })
        : new winston.transports.Console({ stderrLevels: Object.keys(winston.config.npm.levels) }),
    ],
  });
}

type Bindings = Parameters<FastifyBaseLogger['child']>[0];
type ChildLoggerOptions = Parameters<FastifyBaseLogger['child']>[1];
type Serializers = Readonly<Record<string, (value: unknown) => unknown>>;
type WinstonLevel = 'error' | 'warn' | 'info' | 'debug' | 'silly';

/**
 * Presents a winston logger as the pino-shaped logger fastify expects, so request logs and
 * fastify's own messages land in the same JSON stream. Fastify passes its serializers (req → method
 * and url, res → status, err → message and stack) through `child(…, { serializers })`.
 */
export function fastifyLoggerFor(logger: winston.Logger): FastifyBaseLogger {
  return new WinstonFastifyLogger(logger, {});
}

class WinstonFastifyLogger implements FastifyBaseLogger {
  level: string;

  readonly fatal = (...args: unknown[]): void => this.write('error', args);
  readonly error = (...args: unknown[]): void => this.write('error', args);
  readonly warn = (...args: unknown[]): void => this.write('warn', args);
  readonly info = (...args: unknown[]): void => this.write('info', args);
  readonly debug = (...args: unknown[]): void => this.write('debug', args);
  readonly trace = (...args: unknown[]): void => this.write('silly', args);
  readonly silent = (): void => undefined;

  constructor(
    private readonly target: winston.Logger,
    private readonly serializers: Serializers,
  ) {
    this.level = target.level;
  }

  child(bindings: Bindings, options?: ChildLoggerOptions): FastifyBaseLogger {
    const serializers = { ...this.serializers, ...options?.serializers };
    return new WinstonFastifyLogger(this.target.child(bindings), serializers);
  }

  /** pino's call shapes: (message, ...format args), (object, message?, ...format args), (error, message?). */
  private write(level: WinstonLevel, args: readonly unknown[]): void {
    let fields: Record<string, unknown> = {};
    let rest = args;
    const [first] = args;
    if (first instanceof Error) {
      fields = { err: first };
      rest = args.slice(1);
    } else if (typeof first === 'object' && first !== null) {
      fields = { ...(first as Record<string, unknown>) };
      rest = args.slice(1);
    }
    const [template, ...values] = rest;
    const message = typeof template === 'string' ? formatMessage(template, ...values) : '';
    for (const [key, value] of Object.entries(fields)) {
      const serialize = this.serializers[key];
      if (serialize) fields[key] = serialize(value);
    }
    this.target.log(level, message, fields);
  }
}
