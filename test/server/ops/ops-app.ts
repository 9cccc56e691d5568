import fs from 'node:fs/promises';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { createServer, type SekimoriServer } from '../../../server/app.js';
import type { Clock } from '../../../server/clock.js';
import type { Operations } from '../../../server/ops/operations.js';
import { ApiPaths, EnrollResponseSchema, type EnrollResponse, type HostFacts } from '../../../shared/api.js';
import { issueEnrollmentToken } from '../../../server/enrollment.js';
import { hostFacts, makeTempDir, postJson } from '../helpers.js';

export interface OpsServer {
  readonly server: SekimoriServer;
  readonly app: FastifyInstance;
  readonly ops: Operations;
  readonly dataDir: string;
  readonly adminToken: string;
  cleanup(): Promise<void>;
}

/**
 * The real app (`createServer`, real SQLite file in a temp dir) with the operations plugins as the
 * composition root wires them. The admin token authorises both /metrics and the export.
 */
export async function bootOpsServer(options: { onlineWindowMs?: number; clock?: Clock } = {}): Promise<OpsServer> {
  const root = await makeTempDir('sekimori-ops-');
  const dataDir = path.join(root, 'data');
  const server = await createServer({ dataDir, ...(options.clock ? { clock: options.clock } : {}), ...(options.onlineWindowMs ? { onlineWindowMs: options.onlineWindowMs } : {}) });
  const adminToken = (await fs.readFile(server.adminTokenFile, 'utf8')).trim();
  return {
    server,
    app: server.app,
    ops: server.operations,
    dataDir,
    adminToken,
    cleanup: async () => {
      await server.close();
      await fs.rm(root, { recursive: true, force: true });
    },
  };
}

/** Enrols a new terminal through the real API with a fresh token (`host` overrides the default facts). */
export async function enrol(ops: OpsServer, host: Partial<HostFacts> = {}, now = new Date()): Promise<EnrollResponse> {
  const token = await issueEnrollmentToken(ops.server.store, 24, now);
  const response = await postJson(ops.app, ApiPaths.enroll, { token, host: hostFacts(host) });
  if (response.statusCode !== 200) throw new Error(`enrolment failed: ${response.statusCode} ${response.body}`);
  return EnrollResponseSchema.parse(response.json());
}
