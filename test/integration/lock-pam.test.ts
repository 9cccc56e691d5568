import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { totpCode } from '../../agent/lock/factors.js';
import { readJournal } from '../helpers/agent-state.js';
import { enrolConsoleUser, startLockAgent } from '../helpers/lock-agent.js';
import { AGENT_CLI, killAll } from '../helpers/processes.js';
import { useTempDirs } from '../helpers/temp-dir.js';

const tempDir = useTempDirs();
const PIN = '739184';
const installed: string[] = [];

afterEach(async () => {
  await killAll();
  await Promise.all(installed.splice(0).map((file) => fs.rm(file, { force: true })));
});

/** Installs a PAM service that needs the agent's two factors, as the deb's example does. */
async function installPamService(socketPath: string): Promise<string> {
  const service = `sekimori-test-${crypto.randomBytes(4).toString('hex')}`;
  const file = `/etc/pam.d/${service}`;
  await fs.writeFile(file, `auth required pam_exec.so quiet expose_authtok ${process.execPath} ${AGENT_CLI} pam-verify --socket ${socketPath}\naccount required pam_permit.so\n`);
  installed.push(file);
  return service;
}

/** `pamtester SERVICE USER authenticate` with `password` typed at the prompt: true when PAM said yes. */
function pamtester(service: string, user: string, password: string): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const child = spawn('pamtester', [service, user, 'authenticate'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0 && !output.includes('successfully authenticated')) reject(new Error(`pamtester exited 0 without success: ${output}`));
      resolve(code === 0);
    });
    child.stdin.end(`${password}\n`);
  });
}

const hasPamtester = await fs.access('/usr/bin/pamtester').then(() => true, () => false);

describe.skipIf(!hasPamtester || process.getuid?.() !== 0)('Linux login: PAM (pam_exec → sekimori-agent pam-verify → agent), driven by pamtester', () => {
  it('passes only PIN + a fresh code, refuses wrong and replayed codes, and stays shut once the user is locked out', async () => {
    const agent = await startLockAgent(await tempDir(), { consoleUser: 'nobody' });
    const secret = await enrolConsoleUser(agent, PIN);
    const service = await installPamService(agent.socketPath);
    const fresh = totpCode(secret, Date.now() + 30_000); // the enrolment used this step's code

    expect(await pamtester(service, 'nobody', `${PIN}${fresh}`)).toBe(true);
    expect(await pamtester(service, 'nobody', `${PIN}${fresh}`)).toBe(false); // replayed
    expect(await pamtester(service, 'nobody', `999999${totpCode(secret, Date.now())}`)).toBe(false); // wrong PIN
    expect(await pamtester(service, 'nobody', `${PIN}`)).toBe(false); // no code at all: not even asked
    expect(await pamtester(service, 'daemon', `${PIN}${fresh}`)).toBe(false); // a user with no enrolment

    // Three more failures: five in a row locks the user out (built-in My Number profile: maxFailures 5).
    for (let i = 0; i < 3; i++) expect(await pamtester(service, 'nobody', `00000${i}000000`)).toBe(false);
    const before = await readJournal(agent.stateDir);
    expect(before.filter((e) => e.type === 'auth.lockedOut').map((e) => e.data)).toEqual([{ user: 'nobody', via: 'pam', maxFailures: 5 }]);
    // Locked out: refused at the gate (not checked, not counted again) even with the right PIN.
    expect(await pamtester(service, 'nobody', `${PIN}${totpCode(secret, Date.now() + 30_000)}`)).toBe(false);
    const after = await readJournal(agent.stateDir);
    expect(after.filter((e) => e.type === 'auth.failed')).toHaveLength(before.filter((e) => e.type === 'auth.failed').length);

    const failures = after.filter((e) => e.type === 'auth.failed' && e.data.user === 'nobody');
    expect(failures.map((e) => e.data.via)).toEqual(['pam', 'pam', 'pam', 'pam', 'pam']);
    expect(failures.every((e) => e.data.service === service)).toBe(true);
    expect(after.filter((e) => e.type === 'auth.verified').map((e) => e.data)).toEqual([{ user: 'nobody', via: 'pam', service }]);
    // Nothing typed reaches the journal.
    const text = JSON.stringify(after);
    expect(text).not.toContain(PIN);
    expect(text).not.toContain(fresh);
  });

  it('fails closed when the agent is not running', async () => {
    const agent = await startLockAgent(await tempDir(), { consoleUser: 'nobody' });
    const secret = await enrolConsoleUser(agent, PIN);
    const service = await installPamService(agent.socketPath);
    await agent.proc.kill('SIGKILL');
    expect(await pamtester(service, 'nobody', `${PIN}${totpCode(secret, Date.now() + 30_000)}`)).toBe(false);
  });

  it('pam-verify says why on stderr without echoing the secret', async () => {
    const agent = await startLockAgent(await tempDir(), { consoleUser: 'nobody' });
    await enrolConsoleUser(agent, PIN);
    const run = (stdin: string) =>
      new Promise<{ code: number | null; stderr: string }>((resolve) => {
        const child = spawn(process.execPath, [AGENT_CLI, 'pam-verify', '--socket', agent.socketPath], { env: { ...process.env, PAM_USER: 'nobody', PAM_TYPE: 'auth', PAM_SERVICE: 'login' } });
        let stderr = '';
        child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
        child.on('close', (code) => resolve({ code, stderr }));
        child.stdin.end(stdin);
      });
    const wrong = await run('my-pin-without-code\0');
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toContain('the password must be the PIN followed by the 6-digit code');
    const bad = await run('888888123456');
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/wrong-code \(\d+ attempts left\)/);
    expect(bad.stderr).not.toContain('888888');
  });
});
