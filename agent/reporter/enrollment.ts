import type { HostFacts } from '../../shared/api.js';
import type { Journal } from '../journal/journal.js';
import { AgentConfigSchema, readJsonFile, writeJsonFileAtomic, type Credentials, type StatePaths } from '../state.js';
import { ServerCertificateAlarm } from './certificate-alarm.js';
import { ServerClient, type ServerConnectionOptions } from './server-client.js';

export type EnrollOutcome =
  | { kind: 'enrolled'; credentials: Credentials; recovery: { key: Uint8Array; epoch: number } }
  | { kind: 'not-configured' }
  | { kind: 'refused'; status: number; code: string; message: string }
  | { kind: 'unreachable'; message: string };

/**
 * Enrols this agent once: trades the one-time token (command line first, else the installer's
 * config file) for a device id and credential, stores the credential atomically (0600), removes
 * the spent token from the config file and journals `agent.enrolled`.
 */
export async function enrollDevice(input: {
  paths: StatePaths;
  serverUrl: string | null;
  token: string | null;
  hostFacts: () => Promise<HostFacts>;
  journal: Journal;
  /** TLS trust and certificate alarm (the reporter's); absent: the config file's `tls` and `allowInsecureHttp`, refusals journaled here. */
  connection?: ServerConnectionOptions;
}): Promise<EnrollOutcome> {
  const config = await readJsonFile(input.paths.config, AgentConfigSchema);
  const serverUrl = input.serverUrl ?? config?.serverUrl ?? null;
  const token = input.token ?? config?.enrollToken ?? null;
  if (serverUrl === null || token === null) return { kind: 'not-configured' };

  const connection: ServerConnectionOptions = input.connection ?? {
    tls: config?.tls ?? null,
    allowInsecureHttp: config?.allowInsecureHttp === true,
    onCertificateRejected: (rejection) => new ServerCertificateAlarm(input.journal, null).report(rejection),
  };
  const result = await new ServerClient(serverUrl, connection).enroll({ token, host: await input.hostFacts() });
  switch (result.kind) {
    case 'ok': {
      const credentials: Credentials = {
        deviceId: result.value.deviceId,
        credential: result.value.credential,
        serverUrl,
        enrolledAt: new Date().toISOString(),
        policyPublicKey: result.value.policyPublicKey,
      };
      await writeJsonFileAtomic(input.paths.credentials, credentials);
      if (config?.enrollToken !== undefined) {
        const { enrollToken: _spent, ...rest } = config;
        await writeJsonFileAtomic(input.paths.config, rest);
      }
      await input.journal.append('agent.enrolled', { deviceId: credentials.deviceId, serverUrl });
      return { kind: 'enrolled', credentials, recovery: { key: new Uint8Array(Buffer.from(result.value.recoveryKey, 'base64')), epoch: result.value.recoveryKeyEpoch } };
    }
    case 'refused':
      return { kind: 'refused', status: result.status, code: result.error.code, message: result.error.message };
    case 'unreachable':
      return { kind: 'unreachable', message: result.message };
  }
}
