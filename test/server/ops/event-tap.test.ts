import fs from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { GENESIS_HASH } from '../../../shared/journal.js';
import { sha256Hex } from '../../../server/crypto.js';
import { storedEntries, withEventTap } from '../../../server/ops/event-tap.js';
import { Operations } from '../../../server/ops/operations.js';
import { SqliteStore } from '../../../server/sqlite-store.js';
import type { Store } from '../../../server/store.js';
import { journal, makeTempDir, rehashed } from '../helpers.js';

const DEVICE = `dev_${'b'.repeat(32)}`;

async function addDevice(store: Store): Promise<void> {
  const token = 'enrolment-token-0123456789';
  const now = new Date().toISOString();
  await store.addEnrollmentToken({ tokenHash: sha256Hex(token), createdAt: now, expiresAt: new Date(Date.now() + 3_600_000).toISOString() });
  const enrolled = await store.enrollDevice(sha256Hex(token), {
    id: DEVICE,
    hostname: 'kikaku-pc-007',
    os: 'linux',
    arch: 'x64',
    hardwareId: 'hw',
    agentVersion: '0.1.0',
    credentialHash: sha256Hex('x'),
    enrolledAt: now,
    recoveryTag: '123456',
    recoveryKey: { epoch: 0, sealedKey: 'sealed', createdAt: now },
  });
  expect(enrolled).toBe(true);
}

describe('the store tap', () => {
  let root: string;
  let raw: SqliteStore;
  let ops: Operations;
  let store: Store;
  let file: string;

  beforeEach(async () => {
    root = await makeTempDir('sekimori-tap-');
    raw = SqliteStore.open(root, { create: true });
    await addDevice(raw);
    file = path.join(root, 'siem.jsonl');
    ops = Operations.open({ dataDir: root, forwarding: { targets: [{ type: 'jsonl', path: file }] } });
    store = ops.tap(raw);
  });
  afterEach(async () => {
    await ops.close();
    await raw.close();
    await fs.rm(root, { recursive: true, force: true });
  });

  const forwardedSeqs = async (count: number): Promise<number[]> => {
    for (let i = 0; i < 500 && ops.forwarder!.stats()[0]!.sent < count; i += 1) await new Promise((resolve) => setTimeout(resolve, 10));
    const text = await fs.readFile(file, 'utf8').catch(() => '');
    return text.trimEnd() === '' ? [] : text.trimEnd().split('\n').map((line) => JSON.parse(line).seq);
  };

  it('forwards and counts newly stored events once: replays are not forwarded again', async () => {
    const chain = journal(5);
    expect(await store.appendEvents(DEVICE, chain.slice(0, 3), new Date().toISOString())).toMatchObject({ status: 'accepted', accepted: 3 });
    // Replays of 1–3 plus new 4–5.
    expect(await store.appendEvents(DEVICE, chain, new Date().toISOString())).toMatchObject({ status: 'accepted', accepted: 2 });
    expect(await forwardedSeqs(5)).toEqual([1, 2, 3, 4, 5]);
    expect(ops.metrics.eventsIngested.get()).toBe(5);
    const line = JSON.parse((await fs.readFile(file, 'utf8')).split('\n')[0]!);
    expect(line.hostname).toBe('kikaku-pc-007');
  });

  it('forwards the valid prefix of a batch refused for a chain break', async () => {
    const chain = journal(4);
    const broken = [chain[0]!, chain[1]!, rehashed(chain[2]!, { prev: GENESIS_HASH }), chain[3]!];
    const outcome = await store.appendEvents(DEVICE, broken, new Date().toISOString());
    expect(outcome).toMatchObject({ status: 'rejected', accepted: 2 });
    expect(await forwardedSeqs(2)).toEqual([1, 2]);
  });

  it('passes every other store method through unchanged', async () => {
    expect(await store.chainHead(DEVICE)).toEqual({ seq: 0, hash: GENESIS_HASH });
    expect(await store.countEvents(DEVICE)).toBe(0);
  });

  it('never fails an upload because a listener threw', async () => {
    const errors: unknown[] = [];
    const tapped = withEventTap(raw, () => {
      throw new Error('listener bug');
    }, (error) => errors.push(error));
    expect(await tapped.appendEvents(DEVICE, journal(1), new Date().toISOString())).toMatchObject({ status: 'accepted', accepted: 1 });
    expect(errors).toHaveLength(1);
  });

  it('takes no entries from an outcome that stored none', () => {
    const chain = journal(3);
    expect(storedEntries(chain, { status: 'accepted', head: { seq: 3, hash: chain[2]!.hash }, accepted: 0 })).toEqual([]);
    expect(storedEntries(chain, { status: 'unknown-device' })).toEqual([]);
    expect(storedEntries([chain[0]!, chain[1]!, chain[1]!, chain[2]!], { status: 'accepted', head: { seq: 3, hash: chain[2]!.hash }, accepted: 2 })).toEqual([chain[1], chain[2]]);
  });
});
