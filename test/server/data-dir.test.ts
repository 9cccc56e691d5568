import fs from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createServer } from '../../server/app.js';
import { DataDirError, loadOrCreateAdminToken } from '../../server/data-dir.js';
import { makeTempDir } from './helpers.js';

describe('data directory and admin token', () => {
  let root: string;
  beforeEach(async () => {
    root = await makeTempDir();
  });
  afterEach(async () => {
    await fs.rm(root, { recursive: true, force: true });
  });

  it('creates missing parents of the data directory with mode 0700', async () => {
    const dataDir = path.join(root, 'srv', 'sekimori');
    const server = await createServer({ dataDir });
    await server.close();
    expect((await fs.stat(dataDir)).mode & 0o777).toBe(0o700);
  });

  it('keeps the same admin token across restarts', async () => {
    const dataDir = path.join(root, 'data');
    await (await createServer({ dataDir })).close();
    const first = await fs.readFile(path.join(dataDir, 'admin-token'), 'utf8');
    await (await createServer({ dataDir })).close();
    expect(await fs.readFile(path.join(dataDir, 'admin-token'), 'utf8')).toBe(first);
  });

  it('tightens an admin token file that others could read back to 0600', async () => {
    const file = path.join(root, 'admin-token');
    await fs.writeFile(file, `${'t'.repeat(43)}\n`, { mode: 0o644 });
    await fs.chmod(file, 0o644);
    expect(loadOrCreateAdminToken(root).token).toBe('t'.repeat(43));
    expect((await fs.stat(file)).mode & 0o777).toBe(0o600);
  });

  it('refuses a malformed admin token file rather than accepting a weak token', async () => {
    await fs.writeFile(path.join(root, 'admin-token'), 'short\n', { mode: 0o600 });
    expect(() => loadOrCreateAdminToken(root)).toThrow(DataDirError);
  });

  it('refuses a data directory that is a file, with an expected error', async () => {
    const file = path.join(root, 'not-a-dir');
    await fs.writeFile(file, '');
    await expect(createServer({ dataDir: file })).rejects.toThrow(DataDirError);
  });
});
