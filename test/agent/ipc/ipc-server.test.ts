import fs from 'node:fs/promises';
import path from 'node:path';
import winston from 'winston';
import { afterEach, describe, expect, it } from 'vitest';
import type { IpcPrivilege } from '../../../shared/ipc.js';
import { IpcServer, type IpcRefusedInfo } from '../../../agent/ipc/ipc-server.js';
import { linuxPeerLookup, parseSsUnixRows, type PeerIdentity } from '../../../agent/ipc/peer-credentials.js';
import { NodeCommandRunner } from '../../../agent/platform/command-runner.js';
import { ipcClientAs as clientAs } from '../../helpers/lock-agent.js';
import { useTempDirs } from '../../helpers/temp-dir.js';

const tempDir = useTempDirs();
const NOBODY = 65534;
const servers: IpcServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => server.close()));
});

async function rig(authorize: (privilege: IpcPrivilege, peer: PeerIdentity | null) => Promise<boolean>) {
  const dir = await tempDir();
  await fs.chmod(dir, 0o755); // session users must reach the socket's directory
  const socketPath = path.join(dir, 'run', 'agent.sock');
  const seen: { method: string; peer: PeerIdentity | null }[] = [];
  const refused: IpcRefusedInfo[] = [];
  const server = await IpcServer.listen({
    endpoint: socketPath,
    handler: (request, context) => {
      seen.push({ method: request.method, peer: context.peer });
      return Promise.resolve({ method: request.method, uid: context.peer?.uid ?? null });
    },
    logger: winston.createLogger({ silent: true }),
    lookupPeer: linuxPeerLookup(new NodeCommandRunner()),
    authorize,
    onRefused: (info) => refused.push(info),
  });
  servers.push(server);
  return { socketPath, seen, refused, server };
}

describe.skipIf(process.getuid?.() !== 0)('IPC server with kernel peer credentials (real sockets, real uids)', () => {
  it('knows the peer uid from the kernel and gives each method only the privilege it needs', async () => {
    const r = await rig((privilege, peer) => Promise.resolve(privilege === 'any' || (privilege === 'console' && peer?.uid === NOBODY) || peer?.uid === 0));
    expect((await fs.stat(r.socketPath)).mode & 0o777).toBe(0o666);
    const answers = (await clientAs(NOBODY, r.socketPath, ['{"id":1,"method":"status.get"}', '{"id":2,"method":"lock.now"}'])).map((line) => JSON.parse(line) as { id: number; ok: boolean; result?: { uid: number } });
    expect(answers).toEqual([
      { id: 1, ok: true, result: { method: 'status.get', uid: NOBODY } },
      { id: 2, ok: true, result: { method: 'lock.now', uid: NOBODY } },
    ]);
    // A root-only method from nobody: refused, journaled with the uid, connection closed (the next line is never answered).
    const refused = (await clientAs(NOBODY, r.socketPath, ['{"id":3,"method":"auth.verify","params":{"user":"root","pin":"123456","code":"123456"}}', '{"id":4,"method":"status.get"}'])).map((line) => JSON.parse(line) as { id: number; ok: boolean; error?: { code: string } });
    expect(refused).toEqual([{ id: 3, ok: false, error: { code: 'forbidden', message: 'request refused: auth.verify needs root privilege' } }]);
    expect(r.refused).toEqual([{ reason: 'forbidden', method: 'auth.verify', uid: NOBODY, pid: expect.any(Number), detail: 'auth.verify needs root privilege' }]);
    expect(r.seen.map((s) => s.method)).toEqual(['status.get', 'lock.now']);
    // Root passes.
    const root = await clientAs(0, r.socketPath, ['{"id":5,"method":"auth.verify","params":{"user":"root","pin":"123456","code":"123456"}}']);
    expect(JSON.parse(root[0]!)).toMatchObject({ id: 5, ok: true, result: { uid: 0 } });
  });

  it('closes the connection on a malformed, unknown or oversized message, journals why without the content, and keeps serving others', async () => {
    const r = await rig(() => Promise.resolve(true));
    const bad = await clientAs(NOBODY, r.socketPath, ['{"id":1,"method":"lock.submit","params":{"factor":"pin","secret":"hunter22","extra":1}}', '{"id":2,"method":"status.get"}']);
    expect(bad).toHaveLength(1);
    expect(JSON.parse(bad[0]!)).toMatchObject({ id: 1, ok: false, error: { code: 'bad-request' } });
    expect(await clientAs(NOBODY, r.socketPath, ['{not json'])).toEqual([expect.stringContaining('"ok":false')]);
    const huge = `{"id":1,"method":"status.get","pad":"${'x'.repeat(70_000)}"}`;
    expect(JSON.parse((await clientAs(NOBODY, r.socketPath, [huge]))[0]!)).toMatchObject({ ok: false, error: { code: 'too-large' } });
    expect(r.refused.map((info) => info.reason)).toEqual(['bad-request', 'malformed', 'too-large']);
    expect(JSON.stringify(r.refused)).not.toContain('hunter22');
    expect(r.refused.every((info) => info.uid === NOBODY)).toBe(true);
    const fine = await clientAs(NOBODY, r.socketPath, ['{"id":9,"method":"status.get"}']);
    expect(JSON.parse(fine[0]!)).toMatchObject({ id: 9, ok: true });
  });
});

describe('ss -xpn parsing', () => {
  it('reads the peer inode by position from the right (paths may hold spaces) and every pid holding the socket', () => {
    const rows = parseSsUnixRows(
      [
        'u_str ESTAB 0      0      /run/with space/agent.sock 296667 * 296666 users:(("node",pid=9516,fd=20))',
        'u_str ESTAB 0      0      * 296666 /run/with space/agent.sock 296667 users:(("node",pid=9527,fd=18),("sh",pid=9530,fd=18))',
        'u_str LISTEN 0 511 /run/x.sock 1000 * 0 users:(("node",pid=1,fd=3))',
        'u_dgr UNCONN 0 0 * 5 * 6',
        'garbage',
      ].join('\n'),
    );
    expect(rows).toEqual([
      { peerInode: '296666', pids: [9516] },
      { peerInode: '296667', pids: [9527, 9530] },
    ]);
  });
});
