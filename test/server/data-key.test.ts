import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ApiPaths, RecoveryAnswerSchema } from '../../shared/api.js';
import { createServer } from '../../server/app.js';
import { DataDirError } from '../../server/data-dir.js';
import { DATA_KEY_FILE, SealedDataError, dataKeyFrom, loadOrCreateDataKey, recoveryKeyAad } from '../../server/data-key.js';
import { RecoveryTerminal } from '../helpers/recovery-terminal.js';
import { bootServer, enrolDevice, makeTempDir, postJson } from './helpers.js';

describe('data encryption key', () => {
  let root: string;
  beforeEach(async () => {
    root = await makeTempDir();
  });
  afterEach(async () => {
    await fs.rm(root, { recursive: true, force: true });
  });

  it('is created once with mode 0600 and reused: what one start sealed, the next opens', async () => {
    const first = loadOrCreateDataKey(root);
    const file = path.join(root, DATA_KEY_FILE);
    expect((await fs.stat(file)).mode & 0o777).toBe(0o600);
    const text = await fs.readFile(file, 'utf8');
    expect(Buffer.from(text.trim(), 'base64')).toHaveLength(32);
    const sealed = first.seal('secret value', 'row-1');
    const second = loadOrCreateDataKey(root);
    expect(second.keyId).toBe(first.keyId);
    expect(second.open(sealed, 'row-1').toString('utf8')).toBe('secret value');
    expect(await fs.readFile(file, 'utf8')).toBe(text);
    expect((await fs.readdir(root)).filter((name) => name.includes('.tmp'))).toEqual([]);
  });

  it('seals with a fresh IV every time and never shows the plaintext', () => {
    const key = dataKeyFrom(crypto.randomBytes(32));
    const one = key.seal('JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP', 'row');
    const two = key.seal('JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP', 'row');
    expect(one).not.toBe(two);
    expect(one.split('.')[2]).not.toBe(two.split('.')[2]);
    expect(one).not.toContain('JBSWY3DP');
    expect(key.open(one, 'row').toString()).toBe(key.open(two, 'row').toString());
  });

  it('refuses to open a value for another row, an altered value, or one sealed under another key', () => {
    const key = dataKeyFrom(crypto.randomBytes(32));
    const sealed = key.seal(crypto.randomBytes(32), recoveryKeyAad(`dev_${'a'.repeat(32)}`, 0));
    expect(() => key.open(sealed, recoveryKeyAad(`dev_${'b'.repeat(32)}`, 0))).toThrow(SealedDataError);
    expect(() => key.open(sealed, recoveryKeyAad(`dev_${'a'.repeat(32)}`, 1))).toThrow(SealedDataError);
    const parts = sealed.split('.');
    const body = Buffer.from(parts[3]!, 'base64url');
    body[0]! ^= 1;
    parts[3] = body.toString('base64url');
    expect(() => key.open(parts.join('.'), recoveryKeyAad(`dev_${'a'.repeat(32)}`, 0))).toThrow(SealedDataError);
    expect(() => dataKeyFrom(crypto.randomBytes(32)).open(sealed, recoveryKeyAad(`dev_${'a'.repeat(32)}`, 0))).toThrow(/another data key/);
    expect(() => key.open('not sealed', 'x')).toThrow(SealedDataError);
  });

  it('tightens a key file readable by others back to 0600', async () => {
    loadOrCreateDataKey(root);
    await fs.chmod(path.join(root, DATA_KEY_FILE), 0o644);
    loadOrCreateDataKey(root);
    expect((await fs.stat(path.join(root, DATA_KEY_FILE))).mode & 0o777).toBe(0o600);
  });

  it('refuses a malformed key file without overwriting it', async () => {
    await fs.writeFile(path.join(root, DATA_KEY_FILE), 'short\n', { mode: 0o600 });
    expect(() => loadOrCreateDataKey(root)).toThrow(DataDirError);
    expect(await fs.readFile(path.join(root, DATA_KEY_FILE), 'utf8')).toBe('short\n');
  });

  it('keeps recovery working across a server restart', async () => {
    const server = await bootServer();
    const enrolled = await enrolDevice(server);
    await server.close();
    const restarted = await createServer({ dataDir: server.dataDir });
    try {
      const terminal = new RecoveryTerminal(enrolled.deviceId, enrolled.recoveryKey, enrolled.recoveryKeyEpoch);
      const adminToken = (await fs.readFile(restarted.adminTokenFile, 'utf8')).trim();
      const response = await postJson(restarted.app, ApiPaths.adminRecovery, { challenge: terminal.challenge('tanaka', Date.now()) }, adminToken);
      expect(terminal.accept(RecoveryAnswerSchema.parse(response.json()).response!)).toBe(true);
    } finally {
      await restarted.close();
      await server.cleanup();
    }
  });
});
