import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ApiErrorSchema, ApiPaths, EventsBatchResponseSchema } from '../../shared/api.js';
import { GENESIS_HASH } from '../../shared/journal.js';
import { adminGet, bootServer, enrolDevice, journal, postJson, rehashed, type TestServer } from './helpers.js';

describe('POST /api/v1/events', () => {
  let server: TestServer;
  let credential: string;
  let deviceId: string;

  beforeEach(async () => {
    server = await bootServer();
    ({ credential, deviceId } = await enrolDevice(server));
  });
  afterEach(async () => {
    await server.cleanup();
  });

  const send = (entries: unknown[], bearer = credential) => postJson(server.app, ApiPaths.events, { entries }, bearer);
  const tamper = async () => (await adminGet(server, `${ApiPaths.adminDevices}/${deviceId}/chain`)).json().tamper;

  it('accepts a chain uploaded in three batches and acknowledges its head each time', async () => {
    const chain = journal(9);
    for (const [index, batch] of [chain.slice(0, 3), chain.slice(3, 5), chain.slice(5)].entries()) {
      const response = await send(batch);
      expect(response.statusCode, `batch ${index}`).toBe(200);
      const body = EventsBatchResponseSchema.parse(response.json());
      expect(body).toEqual({ ackSeq: batch.at(-1)!.seq, ackHash: batch.at(-1)!.hash, accepted: batch.length });
    }
    expect(await server.store.countEvents(deviceId)).toBe(9);
    expect(await server.store.eventsAfter(deviceId, 0, 100)).toEqual(chain);
  });

  it('answers the exact replay of an accepted batch with 200 and accepted 0, storing nothing twice', async () => {
    const chain = journal(4);
    await send(chain);
    const replay = await send(chain);
    expect(replay.statusCode).toBe(200);
    expect(replay.json()).toEqual({ ackSeq: 4, ackHash: chain[3]!.hash, accepted: 0 });
    expect(await server.store.countEvents(deviceId)).toBe(4);
    expect(await tamper()).toEqual([]);
  });

  it('accepts a batch that overlaps the acknowledged head and counts only the new entries', async () => {
    const chain = journal(6);
    await send(chain.slice(0, 4));
    const response = await send(chain.slice(2));
    expect(response.statusCode).toBe(200);
    expect(response.json()).toMatchObject({ ackSeq: 6, accepted: 2 });
  });

  it('refuses a fork (same seq, different content) with 409 and records it once however often it is sent', async () => {
    const chain = journal(3);
    await send(chain);
    const forged = rehashed(chain[1]!, { data: { note: 'rewritten history' } });
    for (let attempt = 0; attempt < 3; attempt += 1) {
      const response = await send([forged]);
      expect(response.statusCode).toBe(409);
      expect(ApiErrorSchema.parse(response.json()).error).toMatchObject({ code: 'chain-fork', ackSeq: 3, seq: 2 });
    }
    const records = await tamper();
    expect(records).toHaveLength(1);
    expect(records[0]).toMatchObject({ kind: 'fork', seq: 2, detail: { heldHash: chain[1]!.hash, receivedHash: forged.hash } });
    expect(await server.store.eventsAfter(deviceId, 0, 10)).toEqual(chain);
  });

  it('refuses a gap with 409 chain-gap, telling the agent where the server stands', async () => {
    const chain = journal(5);
    await send(chain.slice(0, 2));
    const response = await send(chain.slice(3));
    expect(response.statusCode).toBe(409);
    expect(ApiErrorSchema.parse(response.json()).error).toMatchObject({ code: 'chain-gap', ackSeq: 2, seq: 4 });
    expect(await tamper()).toMatchObject([{ kind: 'gap', seq: 4 }]);
  });

  it('refuses a first upload that does not start at seq 1 as a gap', async () => {
    const response = await send(journal(3).slice(1));
    expect(response.statusCode).toBe(409);
    expect(response.json().error).toMatchObject({ code: 'chain-gap', ackSeq: 0, seq: 2 });
  });

  it('refuses an entry whose prev is not the hash of the head with 409 chain-bad-prev', async () => {
    const chain = journal(3);
    await send(chain.slice(0, 2));
    const misLinked = rehashed(chain[2]!, { prev: GENESIS_HASH });
    const response = await send([misLinked]);
    expect(response.statusCode).toBe(409);
    expect(response.json().error).toMatchObject({ code: 'chain-bad-prev', ackSeq: 2, seq: 3 });
    expect(await tamper()).toMatchObject([{ kind: 'bad-prev', seq: 3 }]);
  });

  it('refuses changed data carried under the old hash with 409 chain-bad-hash', async () => {
    const chain = journal(2);
    const altered = { ...chain[1]!, data: { vendorId: '0000', productId: '0000', note: 'altered' } };
    const response = await send([chain[0], altered]);
    expect(response.statusCode).toBe(409);
    expect(response.json().error).toMatchObject({ code: 'chain-bad-hash', ackSeq: 1, seq: 2 });
    expect(await tamper()).toMatchObject([{ kind: 'bad-hash', seq: 2 }]);
  });

  it('refuses a replay of an accepted entry whose content was changed under its old hash', async () => {
    const chain = journal(2);
    await send(chain);
    const response = await send([{ ...chain[0]!, type: 'operator.marker' }]);
    expect(response.statusCode).toBe(409);
    expect(response.json().error).toMatchObject({ code: 'chain-bad-hash', ackSeq: 2, seq: 1 });
  });

  it('keeps and acknowledges the valid entries of a batch before the entry that breaks the chain', async () => {
    const chain = journal(5);
    const batch = [...chain.slice(0, 3), rehashed(chain[3]!, { prev: GENESIS_HASH }), chain[4]];
    const response = await send(batch);
    expect(response.statusCode).toBe(409);
    expect(response.json().error).toMatchObject({ code: 'chain-bad-prev', ackSeq: 3, seq: 4 });
    expect(await server.store.countEvents(deviceId)).toBe(3);
    // The agent resumes from ackSeq + 1 with the genuine entries.
    const resumed = await send(chain.slice(3));
    expect(resumed.json()).toEqual({ ackSeq: 5, ackHash: chain[4]!.hash, accepted: 2 });
  });

  it('accepts event data nested as deep as the agent journals (under 32 levels), and stores it exactly', async () => {
    let nested: unknown = 'leaf';
    for (let level = 0; level < 28; level += 1) nested = level % 2 === 0 ? [nested] : { level: nested };
    const [first] = journal(1);
    const entry = rehashed(first!, { data: { nested } as never });
    expect((await send([entry])).statusCode).toBe(200);
    expect(await server.store.eventsAfter(deviceId, 0, 1)).toEqual([entry]);
  });

  it('keeps the chains of different devices apart', async () => {
    const other = await enrolDevice(server, { hostname: 'soumu-pc-002' });
    const chain = journal(2);
    expect((await send(chain)).statusCode).toBe(200);
    // The same entries are a fine start for the other device's chain too: chains are per device.
    expect((await send(chain, other.credential)).json()).toMatchObject({ ackSeq: 2, accepted: 2 });
    expect(await server.store.countEvents(other.deviceId)).toBe(2);
  });

  it('refuses a batch without a valid device credential and stores nothing', async () => {
    const response = await send(journal(1), `${deviceId}.${'A'.repeat(43)}`);
    expect(response.statusCode).toBe(401);
    expect(response.json().error.code).toBe('unauthorized');
    expect(await server.store.countEvents(deviceId)).toBe(0);
  });
});
