import { X509Certificate } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { DeviceIdSchema } from '../shared/api.js';
import { HashSchema, GENESIS_HASH } from '../shared/journal.js';
import { TierSchema } from '../shared/policy.js';
import { parsePin } from './reporter/tls-pins.js';
import { serverUrlProblem } from './reporter/transport.js';

/**
 * The agent's state directory: root-only (0700) on an installed system. Every file the agent
 * keeps is named here, so operators and the installer know what to back up or wipe.
 */
export class StatePaths {
  constructor(readonly dir: string) {}
  get journal(): string { return path.join(this.dir, 'journal.jsonl'); }
  get lock(): string { return path.join(this.dir, 'agent.lock'); }
  get socket(): string { return path.join(this.dir, 'agent.sock'); }
  get credentials(): string { return path.join(this.dir, 'credentials.json'); }
  get reporter(): string { return path.join(this.dir, 'reporter.json'); }
  get config(): string { return path.join(this.dir, 'config.json'); }
  /** The policy in force when delivered as a file (root-only); absent: the tier's built-in profile. */
  get policy(): string { return path.join(this.dir, 'policy.json'); }
  get clock(): string { return path.join(this.dir, 'clock.json'); }
  get adoptedInputDevices(): string { return path.join(this.dir, 'adopted-input-devices.json'); }
  get requests(): string { return path.join(this.dir, 'requests.json'); }
  /** When the last self-inspection ran (trusted clock), for the daily schedule across restarts. */
  get selfcheck(): string { return path.join(this.dir, 'selfcheck.json'); }
  /** Where the print log was read up to, and what printing this agent blocked. */
  get printLog(): string { return path.join(this.dir, 'print-log.json'); }
}

/** Default state directory of an installed agent on each platform. */
export function defaultStateDir(platform: NodeJS.Platform, env: NodeJS.ProcessEnv): string {
  switch (platform) {
    case 'win32':
      return path.win32.join(env.ProgramData ?? 'C:\\ProgramData', 'Sekimori', 'agent');
    case 'darwin':
      return '/Library/Application Support/Sekimori/agent';
    default:
      return '/var/lib/sekimori';
  }
}

/** Where the service's socket lives when it runs from the default state directory (systemd `RuntimeDirectory=sekimori`). */
export const DEFAULT_SOCKET_PATH = '/run/sekimori/agent.sock';

/**
 * The local IPC endpoint: a named pipe on Windows; on POSIX the configured socket path, else
 * `/run/sekimori/agent.sock` for the installed service (its state directory is root-only, the
 * socket must be reachable by session users), else a socket inside a non-default state directory
 * (development and tests: reachable by its owner only).
 */
export function ipcEndpoint(platform: NodeJS.Platform, paths: StatePaths, socketPath?: string | null): string {
  if (platform === 'win32') return '\\\\.\\pipe\\sekimori-agent';
  if (socketPath) return socketPath;
  return paths.dir === defaultStateDir(platform, process.env) ? DEFAULT_SOCKET_PATH : paths.socket;
}

export const CredentialsSchema = z.strictObject({
  deviceId: DeviceIdSchema,
  credential: z.string().min(40).max(200),
  serverUrl: z.string().url(),
  enrolledAt: z.string(),
  /** The server's policy-signing key (SPKI DER, base64) as pinned at enrolment. */
  policyPublicKey: z.string().min(40).max(200).optional(),
});
export type Credentials = z.infer<typeof CredentialsSchema>;

export const ReporterStateSchema = z.strictObject({
  ackSeq: z.number().int().nonnegative(),
  ackHash: HashSchema,
  lastContactAt: z.string().nullable(),
});
export type ReporterState = z.infer<typeof ReporterStateSchema>;
export const INITIAL_REPORTER_STATE: ReporterState = { ackSeq: 0, ackHash: GENESIS_HASH, lastContactAt: null };

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/** The certificates of a PEM bundle, or null when it holds none or one does not parse. */
export function parsePemCertificates(pem: string): X509Certificate[] | null {
  const blocks = pem.match(PEM_CERTIFICATE);
  if (blocks === null) return null;
  try {
    return blocks.map((block) => new X509Certificate(block));
  } catch {
    return null;
  }
}

/** The installer's TLS trust for an `https:` server (see README "Deploying to staff PCs"). */
export const AgentTlsConfigSchema = z.strictObject({
  /**
   * PEM of the municipality's CA (one or more certificates). When set it replaces Node's public
   * root store for the server connection: only a chain to this CA is trusted.
   */
  ca: z
    .string()
    .max(256 * 1024)
    .refine((pem) => parsePemCertificates(pem) !== null, 'expected PEM certificates (-----BEGIN CERTIFICATE----- …)')
    .optional(),
  /**
   * SPKI pins `sha256/<base64>` (`sekimori-server tls-pin --cert FILE`): the connection is accepted
   * only if the server's leaf or a certificate of its presented chain matches one.
   */
  pins: z
    .array(z.string().refine((pin) => parsePin(pin) !== null, 'expected sha256/<base64 of 32 bytes> (sekimori-server tls-pin --cert FILE)'))
    .min(1)
    .max(16)
    .optional(),
});
export type AgentTlsConfig = z.infer<typeof AgentTlsConfigSchema>;

/**
 * The installer's config file (IT pushes it with the package): where the server is and a one-time
 * enrolment token, which the agent deletes from this file once it has its own credential.
 */
export const AgentConfigSchema = z.strictObject({
  serverUrl: z.string().url().optional(),
  /** How the server's certificate is trusted: the municipality's CA and/or SPKI pins. */
  tls: AgentTlsConfigSchema.optional(),
  /**
   * Allows a plain `http:` serverUrl to a host other than this machine. Labs only: the enrolment
   * token, the device credential and the journal then cross the network unencrypted.
   */
  allowInsecureHttp: z.boolean().optional(),
  enrollToken: z.string().min(16).max(200).optional(),
  /**
   * The server's policy-signing key (SPKI DER, base64) from the installer. When present it wins
   * over the key the server names at enrolment: IT's package, not the network, is the root of trust.
   */
  policyPublicKey: z.string().min(40).max(200).optional(),
  reporter: z
    .strictObject({
      heartbeatSeconds: z.number().min(1).max(86_400).optional(),
      retryBaseMs: z.number().int().min(10).max(600_000).optional(),
      retryMaxMs: z.number().int().min(10).max(3_600_000).optional(),
      uploadDelayMs: z.number().int().min(0).max(60_000).optional(),
    })
    .optional(),
  /** The terminal's tier (三層の対策). Unknown → `mynumber`, the strictest (fail closed). */
  tier: TierSchema.optional(),
  usb: z
    .strictObject({
      /** Reconcile period: the longest a device can go undecided when no hotplug event arrives. */
      reconcileMs: z.number().int().min(100).max(600_000).optional(),
    })
    .optional(),
  ipc: z
    .strictObject({
      /** The local socket (POSIX). Its directory is created 0755 and the socket 0666: access is decided per method from the peer's uid. */
      socketPath: z.string().min(2).max(100).startsWith('/').optional(),
    })
    .optional(),
  lock: z
    .strictObject({
      /**
       * The user the lock covers, fixed (kiosk terminals without logind, and tests). Without it the
       * agent asks logind for the active session of seat0.
       */
      consoleUser: z.string().min(1).max(256).optional(),
    })
    .optional(),
  selfcheck: z
    .strictObject({
      /**
       * The start inspection runs after the first heartbeat (so upload and time checks have data),
       * or after this many seconds without one (default 60; 0 = at once).
       */
      startDelaySeconds: z.number().int().min(0).max(3600).optional(),
    })
    .optional(),
  print: z
    .strictObject({
      /** Print log poll period (default 15). */
      pollSeconds: z.number().int().min(1).max(3600).optional(),
    })
    .optional(),
}).superRefine((config, context) => {
  // Plain HTTP to another machine (without allowInsecureHttp), or TLS settings on an http:// URL: refused at install and at start.
  const problem = config.serverUrl === undefined ? null : serverUrlProblem(config.serverUrl, config);
  if (problem !== null) context.addIssue({ code: 'custom', path: ['serverUrl'], message: problem });
});
export type AgentConfig = z.infer<typeof AgentConfigSchema>;

/** Reads and validates a JSON state file; `null` when it does not exist. Throws with the file name on bad content. */
export async function readJsonFile<T>(file: string, schema: z.ZodType<T>): Promise<T | null> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new Error(`${file}: not valid JSON`);
  }
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new Error(`${file}: ${issue ? `${issue.path.join('.') || '(root)'}: ${issue.message}` : 'invalid'}`);
  }
  return parsed.data;
}

/**
 * Writes a JSON file atomically (temp file, fsync, rename) with mode 0600, so a crash leaves
 * either the old or the new content, never half of one: the credential must never be torn.
 */
export async function writeJsonFileAtomic(file: string, value: unknown): Promise<void> {
  const temp = `${file}.${process.pid}.tmp`;
  const handle = await fs.open(temp, 'w', 0o600);
  try {
    await handle.writeFile(JSON.stringify(value, null, 2) + '\n');
    await handle.sync();
  } finally {
    await handle.close();
  }
  await fs.rename(temp, file);
}
