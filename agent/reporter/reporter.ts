import type { Logger } from 'winston';
import type { AgentStatus, Command, CommandAck, HeartbeatRequest, HostFacts, SignedPolicy, UserCredentialBundle } from '../../shared/api.js';
import type { Journal } from '../journal/journal.js';
import {
  CredentialsSchema,
  INITIAL_REPORTER_STATE,
  ReporterStateSchema,
  readJsonFile,
  writeJsonFileAtomic,
  type Credentials,
  type ReporterState,
  type StatePaths,
} from '../state.js';
import { enrollDevice } from './enrollment.js';
import { Backoff } from './backoff.js';
import { ServerCertificateAlarm } from './certificate-alarm.js';
import { ServerClient, type ServerConnectionOptions } from './server-client.js';
import type { TlsSettings } from './transport.js';
import { Sleeper } from './sleeper.js';
import type { RequestServer } from '../requests/request-outbox.js';

export interface ReporterOptions {
  readonly journal: Journal;
  readonly paths: StatePaths;
  /** Server URL from the command line (wins over the config file and the stored credential). */
  readonly serverUrl: string | null;
  /** Enrolment token from the command line; the config file's token is used when this is null. */
  readonly enrollToken: string | null;
  readonly hostFacts: () => Promise<HostFacts>;
  readonly status: () => AgentStatus;
  readonly logger: Logger;
  readonly heartbeatMs: number;
  readonly retryBaseMs: number;
  readonly retryMaxMs: number;
  /** After new events become durable, wait this long so a burst travels in one batch. */
  readonly uploadDelayMs: number;
  readonly batchSize?: number;
  /**
   * Called with the signed policy the server holds for this terminal whenever the heartbeat's
   * policy etag changes. The callee verifies and applies it (or refuses it); the reporter only fetches.
   */
  readonly onPolicy?: (signed: SignedPolicy, etag: string) => Promise<void>;
  /** The server's time from each heartbeat, epoch ms, corrected by half the round trip (the trusted clock's anchor). */
  readonly onServerTime?: (serverTimeMs: number) => void;
  /** Called once after enrolment with the device's recovery key. */
  readonly onEnrolled?: (recovery: { key: Uint8Array; epoch: number }) => Promise<void>;
  /** Runs the commands a heartbeat delivered and answers each (acks travel with the next heartbeat). */
  readonly onCommands?: (commands: readonly Command[]) => Promise<CommandAck[]>;
  /** What else the heartbeat reports (the recovery key's epoch). */
  readonly heartbeatExtras?: () => Pick<HeartbeatRequest, 'recovery'>;
  /** After every successful heartbeat (e.g. upload enrolments the server does not hold yet). */
  readonly afterHeartbeat?: () => Promise<void>;
  /** The installer's TLS trust for `https:` server URLs (CA replacing the public roots, SPKI pins). */
  readonly tls?: TlsSettings | null;
  /** Plain `http:` to another machine (labs only); loopback is always allowed. */
  readonly allowInsecureHttp?: boolean;
}

export interface ReporterSnapshot {
  readonly deviceId: string | null;
  readonly enrolled: boolean;
  readonly serverUrl: string | null;
  readonly ackSeq: number;
  readonly lastContactAt: string | null;
  /** Why uploads are stuck, when they are (e.g. the server holds a different chain). */
  readonly problem: string | null;
}

type Step = 'ok' | 'retry';

/**
 * Delivers the journal to the server exactly once: enrol (once), heartbeat, then upload durable
 * entries after the server's acknowledged seq, in order, in batches. The server is the authority on
 * what it holds (ackSeq from the heartbeat), so a crash between upload and the local note of the
 * ack only causes a resend, which the server recognises as a replay. Failures back off with jitter.
 */
export class Reporter {
  private readonly sleeper = new Sleeper();
  private readonly backoff: Backoff;
  private credentials: Credentials | null = null;
  private ack: ReporterState = { ...INITIAL_REPORTER_STATE };
  /** False until a heartbeat told us the server's view (and after any failure). */
  private ackConfirmed = false;
  private nextHeartbeatAt = 0;
  private problem: string | null = null;
  /** Etag of the last policy handed to `onPolicy`; a restart fetches once more (harmless: same version is a no-op). */
  private policyEtag: string | null = null;
  private loop: Promise<void> | null = null;
  private unsubscribe: (() => void) | null = null;
  private wakeTimer: NodeJS.Timeout | null = null;
  /** Command results not yet delivered; kept in memory only (a restart re-runs the commands, which are idempotent). */
  private pendingAcks: CommandAck[] = [];
  /** Every connection's TLS settings and the once-per-failure journal entry for a refused certificate. */
  private readonly connection: ServerConnectionOptions;

  constructor(private readonly options: ReporterOptions) {
    this.backoff = new Backoff(options.retryBaseMs, options.retryMaxMs);
    const alarm = new ServerCertificateAlarm(options.journal, options.logger);
    this.connection = {
      tls: options.tls ?? null,
      allowInsecureHttp: options.allowInsecureHttp === true,
      onCertificateRejected: (rejection) => alarm.report(rejection),
    };
  }

  /** Loads stored credentials and ack, then runs until `dispose`. */
  async start(): Promise<void> {
    this.credentials = await readJsonFile(this.options.paths.credentials, CredentialsSchema);
    this.ack = (await readJsonFile(this.options.paths.reporter, ReporterStateSchema)) ?? { ...INITIAL_REPORTER_STATE };
    this.unsubscribe = this.options.journal.onDidPersist((head) => {
      if (head.seq > this.ack.ackSeq && this.wakeTimer === null) {
        this.wakeTimer = setTimeout(() => {
          this.wakeTimer = null;
          this.sleeper.wake();
        }, this.options.uploadDelayMs);
      }
    });
    this.loop = this.run();
  }

  get snapshot(): ReporterSnapshot {
    return {
      deviceId: this.credentials?.deviceId ?? null,
      enrolled: this.credentials !== null,
      serverUrl: this.serverUrl(),
      ackSeq: this.ack.ackSeq,
      lastContactAt: this.ack.lastContactAt,
      problem: this.problem,
    };
  }

  async dispose(): Promise<void> {
    this.sleeper.cancel();
    this.unsubscribe?.();
    if (this.wakeTimer) clearTimeout(this.wakeTimer);
    await this.loop;
  }

  /** Fetch the policy again and re-check the journal against the server now (the `resync` command). */
  requestResync(): void {
    this.policyEtag = null;
    this.ackConfirmed = false;
    this.nextHeartbeatAt = 0;
    this.sleeper.wake();
  }

  /** Sends a heartbeat (and what follows it: acks, uploads, request sync) as soon as possible. */
  nudge(): void {
    this.nextHeartbeatAt = 0;
    this.sleeper.wake();
  }

  /** Device requests on the server (申請). */
  requestServer(): RequestServer {
    const client = (): { client: ServerClient; credential: string } | null => {
      const credentials = this.credentials;
      return credentials === null ? null : { client: new ServerClient(this.serverUrl() ?? credentials.serverUrl, this.connection), credential: credentials.credential };
    };
    return {
      submit: async (request) => {
        const c = client();
        return c !== null && (await c.client.submitRequest(c.credential, request)).kind === 'ok';
      },
      list: async () => {
        const c = client();
        if (c === null) return null;
        const result = await c.client.listRequests(c.credential);
        return result.kind === 'ok' ? result.value.requests : null;
      },
    };
  }

  /** The enrolment store on the server (roaming), or null while not enrolled. */
  credentialServer(): { put(bundle: UserCredentialBundle): Promise<boolean>; lookup(user: string): Promise<UserCredentialBundle | null> } {
    return {
      put: async (bundle) => {
        const credentials = this.credentials;
        if (credentials === null) return false;
        const result = await new ServerClient(this.serverUrl() ?? credentials.serverUrl, this.connection).putCredentials(credentials.credential, bundle);
        return result.kind === 'ok';
      },
      lookup: async (user) => {
        const credentials = this.credentials;
        if (credentials === null) return null;
        const result = await new ServerClient(this.serverUrl() ?? credentials.serverUrl, this.connection).lookupCredentials(credentials.credential, user);
        return result.kind === 'ok' ? result.value : null;
      },
    };
  }

  private serverUrl(): string | null {
    return this.options.serverUrl ?? this.credentials?.serverUrl ?? null;
  }

  private async run(): Promise<void> {
    while (!this.sleeper.isCancelled) {
      let step: Step;
      try {
        step = this.credentials === null ? await this.enroll() : await this.cycle(this.credentials);
      } catch (error) {
        // A bug or an I/O error: log it and retry later; the journal keeps every event meanwhile.
        this.options.logger.error('reporter cycle failed', { error: error instanceof Error ? error.message : String(error) });
        step = 'retry';
      }
      if (step === 'retry') {
        this.ackConfirmed = false;
        await this.sleeper.sleep(this.backoff.next(), false);
      } else {
        this.backoff.reset();
        const idle = this.credentials === null ? this.options.heartbeatMs : this.nextHeartbeatAt - Date.now();
        await this.sleeper.sleep(idle, true);
      }
    }
  }

  private async enroll(): Promise<Step> {
    const outcome = await enrollDevice({
      paths: this.options.paths,
      serverUrl: this.options.serverUrl,
      token: this.options.enrollToken,
      hostFacts: this.options.hostFacts,
      journal: this.options.journal,
      connection: this.connection,
    });
    switch (outcome.kind) {
      case 'enrolled':
        this.credentials = outcome.credentials;
        this.problem = null;
        this.ack = { ...INITIAL_REPORTER_STATE };
        this.ackConfirmed = false;
        this.nextHeartbeatAt = 0;
        this.options.logger.info('enrolled', { deviceId: outcome.credentials.deviceId, serverUrl: outcome.credentials.serverUrl });
        await this.options.onEnrolled?.(outcome.recovery);
        return 'ok';
      case 'not-configured':
        this.problem = 'not-configured';
        this.options.logger.warn('not enrolled and no server URL or enrolment token configured');
        return 'retry';
      case 'refused':
        this.problem = `enrolment refused: ${outcome.code}`;
        this.options.logger.error('enrolment refused', { status: outcome.status, code: outcome.code, message: outcome.message });
        return 'retry';
      case 'unreachable':
        this.problem = 'server unreachable';
        this.options.logger.warn('server unreachable for enrolment', { message: outcome.message });
        return 'retry';
    }
  }

  private async cycle(credentials: Credentials): Promise<Step> {
    const client = new ServerClient(this.serverUrl() ?? credentials.serverUrl, this.connection);
    const journal = this.options.journal;
    if (!this.ackConfirmed || Date.now() >= this.nextHeartbeatAt) {
      const sentAt = performance.now();
      const acks = this.pendingAcks;
      const heartbeat = await client.heartbeat(credentials.credential, {
        status: this.options.status(),
        ...this.options.heartbeatExtras?.(),
        ...(acks.length > 0 ? { acks: acks.slice(0, 100) } : {}),
      });
      if (heartbeat.kind !== 'ok') return this.failed('heartbeat', heartbeat);
      this.pendingAcks = this.pendingAcks.slice(Math.min(acks.length, 100));
      const serverTimeMs = Date.parse(heartbeat.value.serverTime);
      if (Number.isFinite(serverTimeMs)) this.options.onServerTime?.(serverTimeMs + (performance.now() - sentAt) / 2);
      this.nextHeartbeatAt = Date.now() + this.options.heartbeatMs;
      await this.fetchPolicy(client, credentials, heartbeat.value.policyEtag);
      if (heartbeat.value.commands.length > 0 && this.options.onCommands) {
        const delivered = new Set(this.pendingAcks.map((ack) => ack.id));
        const fresh = heartbeat.value.commands.filter((command) => !delivered.has(command.id));
        if (fresh.length > 0) {
          this.pendingAcks.push(...(await this.options.onCommands(fresh)));
          // Answer at once rather than a heartbeat period later: the administrator is waiting.
          this.nextHeartbeatAt = 0;
        }
      }
      await this.options.afterHeartbeat?.().catch((error: unknown) => this.options.logger.warn('after-heartbeat work failed', { error: String(error) }));
      const { ackSeq, ackHash } = heartbeat.value;
      await this.noteAck(ackSeq, ackHash);
      const conflict = await this.chainConflict(ackSeq, ackHash);
      if (conflict !== null) {
        this.problem = conflict;
        this.options.logger.error('server holds a different chain; uploads paused', { ackSeq, conflict });
        return 'retry';
      }
      this.ackConfirmed = true;
    }
    const batchSize = this.options.batchSize ?? 200;
    while (this.ack.ackSeq < journal.durableHead.seq && !this.sleeper.isCancelled) {
      const entries = await journal.read(this.ack.ackSeq + 1, batchSize);
      const sent = await client.sendEvents(credentials.credential, entries);
      if (sent.kind !== 'ok') return this.failed('events', sent);
      await this.noteAck(sent.value.ackSeq, sent.value.ackHash);
    }
    this.problem = null;
    return 'ok';
  }

  private async fetchPolicy(client: ServerClient, credentials: Credentials, etag: string | null): Promise<void> {
    if (etag === null || etag === this.policyEtag || !this.options.onPolicy) return;
    const fetched = await client.policy(credentials.credential);
    if (fetched.kind !== 'ok') {
      // Retried at the next heartbeat; the policy in force stays.
      this.options.logger.warn('could not fetch the policy', { etag, result: fetched.kind === 'refused' ? fetched.error.code : fetched.message });
      return;
    }
    await this.options.onPolicy(fetched.value, etag);
    this.policyEtag = etag;
  }

  /** Null when our journal agrees with what the server holds; otherwise why not. */
  private async chainConflict(ackSeq: number, ackHash: string): Promise<string | null> {
    const durable = this.options.journal.durableHead;
    if (ackSeq > durable.seq) return `server holds ${ackSeq} entries, this journal only ${durable.seq}`;
    if (ackSeq === 0) return null;
    const [entry] = await this.options.journal.read(ackSeq, 1);
    return entry?.hash === ackHash ? null : `entry ${ackSeq} differs from the server's copy`;
  }

  private failed(what: string, result: { kind: 'refused'; status: number; error: { code: string; message: string } } | { kind: 'unreachable'; message: string }): Step {
    if (result.kind === 'unreachable') {
      this.problem = 'server unreachable';
      this.options.logger.warn(`${what}: server unreachable`, { message: result.message, failures: this.backoff.failures });
    } else {
      // A 401 never deletes the credential: it may be a transient server problem; an admin re-enrols if revoked.
      this.problem = `${what} refused: ${result.error.code}`;
      this.options.logger.error(`${what} refused`, { status: result.status, code: result.error.code, message: result.error.message });
    }
    return 'retry';
  }

  private async noteAck(ackSeq: number, ackHash: string): Promise<void> {
    this.ack = { ackSeq, ackHash, lastContactAt: new Date().toISOString() };
    await writeJsonFileAtomic(this.options.paths.reporter, this.ack);
  }
}
