import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { ApiPaths, EnrollResponseSchema, type AgentStatus, type EnrollResponse, type HostFacts } from '../../shared/api.js';
import { EMPTY_HEAD, chainEntry, type JournalEntry } from '../../shared/journal.js';
import { createServer, type SekimoriServer, type ServerOptions } from '../../server/app.js';
import type { Clock } from '../../server/clock.js';
import { sha256Hex } from '../../server/crypto.js';
import { issueEnrollmentToken } from '../../server/enrollment.js';

/** A temporary directory, removed by `cleanup`. */
export async function makeTempDir(prefix = 'sekimori-server-'): Promise<string> {
  return fs.mkdtemp(path.join(os.tmpdir(), prefix));
}

export interface TestServer extends SekimoriServer {
  /** The temp dir holding the data dir (`<root>/data`). */
  readonly root: string;
  readonly dataDir: string;
  readonly adminToken: string;
  /** Closes the app and the database, removes the temp dir. */
  cleanup(): Promise<void>;
  /** Issues an enrolment token straight through the store (as the CLI does). */
  issueToken(ttlHours?: number, now?: Date): Promise<string>;
}

/** Boots the real app on a real SQLite file in a fresh temp dir (no port: use `app.inject`). */
export async function bootServer(options: Partial<Omit<ServerOptions, 'dataDir'>> = {}): Promise<TestServer> {
  const root = await makeTempDir();
  const dataDir = path.join(root, 'data');
  const server = await createServer({ dataDir, ...options });
  const adminToken = (await fs.readFile(server.adminTokenFile, 'utf8')).trim();
  return {
    ...server,
    root,
    dataDir,
    adminToken,
    cleanup: async () => {
      await server.close();
      await fs.rm(root, { recursive: true, force: true });
    },
    issueToken: (ttlHours = 24, now = new Date()) => issueEnrollmentToken(server.store, ttlHours, now),
  };
}

/** A clock tests can move. */
export function movableClock(start = new Date('2026-11-25T00:00:00.000Z')): Clock & { advanceHours(hours: number): void } {
  let now = start.getTime();
  const clock = (): Date => new Date(now);
  clock.advanceHours = (hours: number): void => {
    now += hours * 3_600_000;
  };
  return clock;
}

export function hostFacts(overrides: Partial<HostFacts> = {}): HostFacts {
  return { hostname: 'soumu-pc-001', os: 'linux', arch: 'x64', hardwareId: 'machine-id-0001', agentVersion: '0.1.0', ...overrides };
}

export function agentStatus(overrides: Partial<AgentStatus> = {}): AgentStatus {
  return {
    agentVersion: '0.1.0',
    enforcement: { state: 'enforced' },
    lockState: 'unlocked',
    policyVersion: null,
    journal: { length: 0, headHash: EMPTY_HEAD.hash },
    ...overrides,
  };
}

export function postJson(app: FastifyInstance, url: string, body: unknown, bearer?: string): Promise<LightMyRequestResponse> {
  return app.inject({
    method: 'POST',
    url,
    headers: { 'content-type': 'application/json', ...(bearer === undefined ? {} : { authorization: `Bearer ${bearer}` }) },
    payload: JSON.stringify(body),
  });
}

export function adminGet(server: TestServer, url: string): Promise<LightMyRequestResponse> {
  return server.app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${server.adminToken}` } });
}

/** Enrols a new device with a fresh token; returns the enrolment answer (id, credential, recovery key…). */
export async function enrolDevice(server: TestServer, host: Partial<HostFacts> = {}): Promise<EnrollResponse> {
  const token = await server.issueToken();
  const response = await postJson(server.app, ApiPaths.enroll, { token, host: hostFacts(host) });
  if (response.statusCode !== 200) throw new Error(`enrolment failed: ${response.statusCode} ${response.body}`);
  return EnrollResponseSchema.parse(response.json());
}

/**
 * A valid journal of `count` entries continuing `from` (the genesis head by default), as the agent
 * writes it.
 */
export function journal(count: number, from: { seq: number; hash: string } = EMPTY_HEAD): JournalEntry[] {
  const entries: JournalEntry[] = [];
  let head = from;
  for (let i = 0; i < count; i += 1) {
    const seq = head.seq + 1;
    const { entry } = chainEntry(
      head,
      {
        time: new Date(Date.UTC(2026, 10, 25, 0, 0, seq)).toISOString(),
        tz: '+09:00',
        type: seq % 2 === 0 ? 'device.blocked' : 'device.attached',
        data: { vendorId: '0930', productId: '6545', note: `event ${seq}` },
      },
      sha256Hex,
    );
    entries.push(entry);
    head = entry;
  }
  return entries;
}

/** The entry with its hash recomputed after `change` (a well-formed entry with different content). */
export function rehashed(entry: JournalEntry, change: Partial<JournalEntry>): JournalEntry {
  const { hash: _old, ...rest } = { ...entry, ...change };
  return chainEntry({ seq: rest.seq - 1, hash: rest.prev }, rest, sha256Hex).entry;
}

/** A valid policy document as an administrator submits it (the server sets version, issuedAt, tier). */
export function policyBody(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    mode: 'enforce',
    usb: {
      rules: ['allow with-interface equals { 03:*:* }', 'allow id 0930:6545 serial "A1B2C3" label "総務課 暗号化USB #12"', 'block'],
      readOnly: ['id 0930:6545 serial "D4E5F6"'],
      implicit: 'block',
    },
    lock: { idleSeconds: 300, onResume: true, onSessionStart: true, factors: ['pin', 'totp'], maxFailures: 5, offlineDays: 14 },
    network: { allowedCidrs: ['10.20.0.0/16'], onViolation: 'alert' },
    report: { heartbeatSeconds: 60 },
    exceptions: [],
    ...overrides,
  };
}

/** PUT with the admin token, another bearer, or (null) no Authorization header. */
export function adminPut(server: TestServer, url: string, body: unknown, bearer: string | null = server.adminToken): Promise<LightMyRequestResponse> {
  return server.app.inject({
    method: 'PUT',
    url,
    headers: { 'content-type': 'application/json', ...(bearer === null ? {} : { authorization: `Bearer ${bearer}` }) },
    payload: JSON.stringify(body),
  });
}

/** DELETE with the admin token (or another bearer, or none). */
export function adminDelete(server: TestServer, url: string, bearer: string | null = server.adminToken): Promise<LightMyRequestResponse> {
  return server.app.inject({ method: 'DELETE', url, headers: bearer === null ? {} : { authorization: `Bearer ${bearer}` } });
}

/** Every file of the database (main file, WAL, shared memory) as one buffer: what a copy of it would reveal. */
export async function databaseBytes(dataDir: string): Promise<Buffer> {
  const names = (await fs.readdir(dataDir)).filter((name) => name.startsWith('sekimori.db'));
  return Buffer.concat(await Promise.all(names.map((name) => fs.readFile(path.join(dataDir, name)))));
}
