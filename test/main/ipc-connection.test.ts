import { describe, expect, it } from 'vitest';
import { MAX_IPC_LINE_BYTES, type IpcNotification } from '../../shared/ipc.js';
import { IpcConnection, IpcConnectionError, IpcRequestRefused, utf8ByteLength, type IpcTimers } from '../../shared/ipc-connection.js';
import { baseView } from '../renderer/scripted-lock-agent.js';

/** `shared/ipc-connection.ts` (lives here with its only run-time user, main's agent client). */

/** Timers the test fires by hand. */
class ManualTimers implements IpcTimers {
  private next = 1;
  readonly pending = new Map<number, { callback: () => void; ms: number }>();
  setTimeout(callback: () => void, ms: number): unknown {
    const id = this.next++;
    this.pending.set(id, { callback, ms });
    return id;
  }
  clearTimeout(handle: unknown): void {
    this.pending.delete(handle as number);
  }
  fireAll(): void {
    for (const [id, timer] of [...this.pending]) {
      this.pending.delete(id);
      timer.callback();
    }
  }
}

function setup(options: { timeoutMs?: number } = {}) {
  const written: string[] = [];
  const timers = new ManualTimers();
  const connection = new IpcConnection((line) => written.push(line), { timers, ...options });
  const errors: IpcConnectionError[] = [];
  const closes: string[] = [];
  connection.onError((error) => errors.push(error));
  connection.onDidClose((reason) => closes.push(reason));
  const sent = () => written.map((line) => JSON.parse(line) as { id: number; method: string; params?: unknown });
  return { connection, written, sent, timers, errors, closes };
}

const settled = async <T>(promise: Promise<T>): Promise<{ value?: T; error?: unknown }> =>
  promise.then((value) => ({ value }), (error: unknown) => ({ error }));

describe('IpcConnection', () => {
  it('writes one JSON line per request with increasing ids and resolves each with its own answer', async () => {
    const { connection, written, sent } = setup();
    const first = connection.request({ method: 'lock.get' });
    const second = connection.request({ method: 'lock.submit', params: { factor: 'pin', secret: '246810' } });
    expect(written.every((line) => line.endsWith('\n') && line.indexOf('\n') === line.length - 1)).toBe(true);
    const [a, b] = sent();
    expect(a).toEqual({ id: 1, method: 'lock.get' });
    expect(b).toEqual({ id: 2, method: 'lock.submit', params: { factor: 'pin', secret: '246810' } });
    // Answers out of order, split across chunks anywhere.
    const stream = `{"id":2,"ok":true,"result":"second"}\n{"id":1,"ok":true,"result":{"n":1}}\n`;
    for (const piece of [stream.slice(0, 7), stream.slice(7, 40), stream.slice(40)]) connection.receive(piece);
    expect(await second).toBe('second');
    expect(await first).toEqual({ n: 1 });
    expect(connection.pendingCount).toBe(0);
  });

  it("rejects with IpcRequestRefused carrying the agent's code when it answers ok: false", async () => {
    const { connection } = setup();
    const pending = settled(connection.request({ method: 'lock.now' }));
    connection.receive('{"id":1,"ok":false,"error":{"code":"forbidden","message":"not the console user"}}\n');
    const { error } = await pending;
    expect(error).toBeInstanceOf(IpcRequestRefused);
    expect(error).toMatchObject({ code: 'forbidden', message: 'not the console user' });
    expect(connection.closed).toBe(false);
  });

  it('times out one request without closing the connection, and ignores its late answer', async () => {
    const { connection, timers } = setup({ timeoutMs: 1234 });
    const pending = settled(connection.request({ method: 'lock.get' }));
    expect([...timers.pending.values()].map((timer) => timer.ms)).toEqual([1234]);
    timers.fireAll();
    const { error } = await pending;
    expect(error).toBeInstanceOf(IpcConnectionError);
    expect((error as IpcConnectionError).code).toBe('timeout');
    connection.receive('{"id":1,"ok":true,"result":null}\n');
    expect(connection.closed).toBe(false);
    const next = connection.request({ method: 'lock.get' });
    connection.receive('{"id":2,"ok":true,"result":7}\n');
    expect(await next).toBe(7);
  });

  it('delivers valid notifications to every listener and drops an invalid one without closing', () => {
    const { connection, errors } = setup();
    const seen: IpcNotification[] = [];
    const seenToo: IpcNotification[] = [];
    connection.onNotification((notification) => seen.push(notification));
    const stop = connection.onNotification((notification) => seenToo.push(notification));
    const view = baseView();
    connection.receive(JSON.stringify({ event: 'lock.changed', data: view }) + '\n');
    stop();
    connection.receive(JSON.stringify({ event: 'lock.changed', data: { ...view, state: 'open-sesame' } }) + '\n');
    connection.receive(JSON.stringify({ event: 'lock.changed', data: view }) + '\n');
    expect(seen).toEqual([{ event: 'lock.changed', data: view }, { event: 'lock.changed', data: view }]);
    expect(seenToo).toHaveLength(1);
    expect(errors.map((error) => error.code)).toEqual(['protocol']);
    expect(connection.closed).toBe(false);
  });

  it('closes and rejects every pending request when the agent sends a line that is not JSON', async () => {
    const { connection, errors, closes } = setup();
    const a = settled(connection.request({ method: 'lock.get' }));
    const b = settled(connection.request({ method: 'status.get' }));
    expect(() => connection.receive('{"id":1,"ok":tru\n')).not.toThrow();
    for (const { error } of [await a, await b]) expect((error as IpcConnectionError).code).toBe('closed');
    expect(errors.map((error) => error.code)).toEqual(['protocol']);
    expect(closes).toHaveLength(1);
    expect(connection.closed).toBe(true);
    // Nothing more is delivered or sent.
    connection.receive('{"id":2,"ok":true,"result":1}\n');
    expect((await settled(connection.request({ method: 'lock.get' }))).error).toMatchObject({ code: 'closed' });
  });

  it('closes on a line over MAX_IPC_LINE_BYTES, complete or still arriving, without buffering more', async () => {
    for (const newline of ['\n', '']) {
      const { connection, errors } = setup();
      const pending = settled(connection.request({ method: 'lock.get' }));
      const huge = `{"event":"lock.changed","data":"${'あ'.repeat(MAX_IPC_LINE_BYTES / 3)}"}` + newline;
      expect(() => connection.receive(huge)).not.toThrow();
      expect(errors.map((error) => error.code)).toEqual(['too-large']);
      expect((await pending).error).toMatchObject({ code: 'closed' });
    }
  });

  it('treats a response that breaks the contract or an error without an id as a protocol failure', async () => {
    for (const line of ['{"id":1,"ok":true}', '{"id":1,"ok":"yes","result":1}', '[1,2]', '{"id":null,"ok":false,"error":{"code":"too-large","message":"x"}}', '{"__proto__":{"id":1}}']) {
      const { connection, errors } = setup();
      const pending = settled(connection.request({ method: 'lock.get' }));
      connection.receive(line + '\n');
      expect(errors.map((error) => error.code), line).toEqual(['protocol']);
      expect((await pending).error, line).toMatchObject({ code: 'closed' });
    }
  });

  it('refuses to send a request that is not in the contract or too long, and keeps the connection', async () => {
    const { connection, written } = setup();
    const bad = await settled(connection.request({ method: 'lock.submit', params: { factor: 'fingerprint', secret: 'x' } } as never));
    expect(bad.error).toMatchObject({ code: 'bad-request' });
    const long = await settled(connection.request({ method: 'journal.append', params: { type: 'agent.started', data: { note: 'x'.repeat(MAX_IPC_LINE_BYTES) } } } as never));
    expect((long.error as IpcConnectionError).code).toMatch(/bad-request|too-large/);
    expect(written).toEqual([]);
    expect(connection.closed).toBe(false);
  });

  it('rejects the request when write throws', async () => {
    const connection = new IpcConnection(() => {
      throw new Error('EPIPE');
    }, { timers: new ManualTimers() });
    const { error } = await settled(connection.request({ method: 'lock.get' }));
    expect(error).toMatchObject({ code: 'closed' });
    expect(connection.pendingCount).toBe(0);
  });

  it('close(reason) rejects pending requests once and reports the reason once', async () => {
    const { connection, closes, timers } = setup();
    const pending = settled(connection.request({ method: 'lock.get' }));
    connection.close('app quitting');
    connection.close('again');
    expect((await pending).error).toMatchObject({ code: 'closed', message: expect.stringContaining('app quitting') });
    expect(closes).toEqual(['app quitting']);
    expect(timers.pending.size).toBe(0);
  });

  it('keeps the stream going when a listener throws', async () => {
    const { connection } = setup();
    const seen: string[] = [];
    const uncaught: unknown[] = [];
    const onError = (error: unknown) => uncaught.push(error);
    process.on('uncaughtException', onError);
    try {
      connection.onNotification(() => {
        throw new Error('listener bug');
      });
      connection.onNotification((notification) => seen.push(notification.event));
      connection.receive(JSON.stringify({ event: 'lock.changed', data: baseView() }) + '\n');
      await new Promise((resolve) => setImmediate(resolve));
    } finally {
      process.off('uncaughtException', onError);
    }
    expect(seen).toEqual(['lock.changed']);
    expect(uncaught).toHaveLength(1);
  });

  it('counts UTF-8 bytes like Buffer.byteLength', () => {
    for (const text of ['', 'abc', 'é', '関守', '😀', 'a\ud800b', '\udc00']) {
      expect(utf8ByteLength(text), JSON.stringify(text)).toBe(Buffer.byteLength(text));
    }
  });
});
