import dgram from 'node:dgram';
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { JournalEntry } from '../../../shared/journal.js';
import { EventForwarder, type ForwardingConfig } from '../../../server/ops/forwarder.js';
import { escapeParamValue, formatSyslog, headerField, octetCountingFrame, truncateUtf8 } from '../../../server/ops/syslog.js';
import { journal } from '../helpers.js';

const DEVICE = `dev_${'a'.repeat(32)}`;
const HOSTILE_PRODUCT = '"] [evil@1 x="y"] \\\u0000\n<img src=x onerror=alert(1)>\u202Eexe.txt 暗号化USB';
/** The same in a PARAM-VALUE: control characters replaced (escapes are undone by the parser below). */
const HOSTILE_IN_SD = HOSTILE_PRODUCT.replaceAll('\u0000', '\uFFFD').replaceAll('\n', '\uFFFD');

/** A USB decision event as the agent journals it, with a hostile product string. */
function hostileEntries(): JournalEntry[] {
  const [entry] = journal(1);
  return [
    {
      ...entry!,
      type: 'device.blocked',
      data: {
        device: { id: '0930:6545', serial: 'S"1]\\', name: HOSTILE_PRODUCT, manufacturer: 'TOSHIBA' },
        decision: 'block',
        rule: { kind: 'implicit' },
        user: 'tanaka"]',
      },
    },
  ];
}

/** Parses RFC 6587 octet-counted frames; returns the messages and whatever incomplete tail is left. */
function parseOctetCounted(buffer: Buffer): { messages: Buffer[]; rest: Buffer } {
  const messages: Buffer[] = [];
  let offset = 0;
  for (;;) {
    const space = buffer.indexOf(0x20, offset);
    if (space < 0) break;
    const lengthText = buffer.subarray(offset, space).toString('ascii');
    if (!/^[1-9][0-9]*$/.test(lengthText)) throw new Error(`bad frame length ${JSON.stringify(lengthText)}`);
    const length = Number(lengthText);
    if (space + 1 + length > buffer.length) break;
    messages.push(buffer.subarray(space + 1, space + 1 + length));
    offset = space + 1 + length;
  }
  return { messages, rest: buffer.subarray(offset) };
}

/**
 * A strict reader of one RFC 5424 message: header fields within PRINTUSASCII, SD elements whose
 * PARAM-VALUEs contain only escaped `"`, `\`, `]`, and MSG starting with the UTF-8 BOM.
 */
function parseSyslog(message: Buffer): { pri: number; header: string[]; sd: Record<string, string>[]; msg: string | null } {
  const text = message.toString('utf8');
  const head = /^<(\d{1,3})>1 (\S+) ([\x21-\x7e]{1,255}) ([\x21-\x7e]{1,48}) ([\x21-\x7e]{1,128}) ([\x21-\x7e]{1,32}) /.exec(text);
  if (!head) throw new Error(`bad header: ${text.slice(0, 120)}`);
  let rest = text.slice(head[0].length);
  const sd: Record<string, string>[] = [];
  if (rest.startsWith('-')) rest = rest.slice(1);
  else {
    while (rest.startsWith('[')) {
      const id = /^\[([^\s="\]]{1,32})/.exec(rest);
      if (!id) throw new Error('bad SD-ID');
      rest = rest.slice(id[0].length);
      const params: Record<string, string> = { '@id': id[1]! };
      for (;;) {
        const param = /^ ([^\s="\]]{1,32})="((?:[^"\\\]]|\\["\\\]])*)"/.exec(rest);
        if (!param) break;
        params[param[1]!] = param[2]!.replace(/\\(["\\\]])/g, '$1');
        rest = rest.slice(param[0].length);
      }
      if (!rest.startsWith(']')) throw new Error(`unterminated SD element before ${JSON.stringify(rest.slice(0, 40))}`);
      rest = rest.slice(1);
      sd.push(params);
    }
  }
  if (rest === '') return { pri: Number(head[1]), header: head.slice(2, 7), sd, msg: null };
  if (!rest.startsWith(' \uFEFF')) throw new Error('MSG must start with SP and the BOM');
  return { pri: Number(head[1]), header: head.slice(2, 7), sd, msg: rest.slice(2) };
}

describe('RFC 5424 formatting', () => {
  it('escapes ", \\ and ] in PARAM-VALUEs and replaces control characters', () => {
    expect(escapeParamValue('a"b\\c]d')).toBe('a\\"b\\\\c\\]d');
    expect(escapeParamValue('x\u0000y\nz\u009b')).toBe('x\uFFFDy\uFFFDz\uFFFD');
  });

  it('keeps header fields to PRINTUSASCII within their lengths, or NILVALUE', () => {
    expect(headerField('pc-01.city.lg.jp', 255)).toBe('pc-01.city.lg.jp');
    expect(headerField('総務課 PC', 255)).toBe('____PC');
    expect(headerField('総務課', 255)).toBe('-');
    expect(headerField('', 48)).toBe('-');
    expect(headerField('x'.repeat(300), 255)).toHaveLength(255);
  });

  it('cuts MSG on a UTF-8 character boundary', () => {
    const bytes = Buffer.from('ab暗号', 'utf8');
    expect(truncateUtf8(bytes, 4).toString('utf8')).toBe('ab');
    expect(truncateUtf8(bytes, 5).toString('utf8')).toBe('ab暗');
    const message = formatSyslog({ facility: 13, severity: 4, timestamp: null, hostname: 'h', appName: 'a', procId: null, msgId: 'm', structuredData: [], message: '暗'.repeat(100) }, 60);
    expect(message.length).toBeLessThanOrEqual(60);
    expect(() => message.toString('utf8')).not.toThrow();
    expect(message.toString('utf8')).not.toContain('\uFFFD');
  });

  it('frames with the octet count of the message', () => {
    expect(octetCountingFrame(Buffer.from('<1>1 - - - - - -', 'utf8')).toString()).toBe('16 <1>1 - - - - - -');
    expect(parseOctetCounted(octetCountingFrame(Buffer.from('暗号 ]"\n', 'utf8'))).messages[0]!.toString()).toBe('暗号 ]"\n');
  });
});

describe('EventForwarder', () => {
  let dir: string;
  let forwarder: EventForwarder | undefined;
  const closers: (() => Promise<void>)[] = [];

  beforeEach(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sekimori-forward-'));
  });
  afterEach(async () => {
    await forwarder?.close(500);
    forwarder = undefined;
    for (const close of closers.splice(0)) await close();
    await fs.rm(dir, { recursive: true, force: true });
  });

  const start = (config: ForwardingConfig, hostname: string | null = 'soumu-pc-001') => {
    forwarder = EventForwarder.create(config, { hostnameOf: () => hostname, retryMs: 20, clock: () => new Date('2026-11-25T00:00:00.000Z') });
    forwarder.start();
    return forwarder;
  };

  const until = async (condition: () => boolean | Promise<boolean>, what: string) => {
    for (let i = 0; i < 500; i += 1) {
      if (await condition()) return;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    throw new Error(`timed out waiting for ${what}`);
  };

  it('sends RFC 5424 datagrams over UDP, a hostile product string escaped and in MSG intact', async () => {
    const server = dgram.createSocket('udp4');
    const received: Buffer[] = [];
    server.on('message', (message) => received.push(message));
    await new Promise<void>((resolve) => server.bind(0, '127.0.0.1', resolve));
    closers.push(() => new Promise((resolve) => server.close(() => resolve())));
    const { port } = server.address();
    const target = start({ targets: [{ type: 'syslog', transport: 'udp', host: '127.0.0.1', port }] }, '総務課-PC\n01');
    target.forward(DEVICE, hostileEntries());
    await until(() => received.length === 1, 'one datagram');

    const parsed = parseSyslog(received[0]!);
    expect(parsed.pri).toBe(13 * 8 + 4);
    // A hostname that is not PRINTUSASCII becomes the device id in HOSTNAME; the original stays in SD.
    expect(parsed.header).toEqual(['2026-11-25T00:00:01.000Z', DEVICE, 'sekimori', '-', 'device.blocked']);
    expect(parsed.sd).toHaveLength(1);
    const sd = parsed.sd[0]!;
    expect(sd['@id']).toBe('sekimori@32473');
    expect(sd.usbName).toBe(HOSTILE_IN_SD);
    expect(sd.usbSerial).toBe('S"1]\\');
    expect(sd.user).toBe('tanaka"]');
    expect(sd.hostname).toBe('総務課-PC\uFFFD01');
    expect(sd.deviceId).toBe(DEVICE);
    const msg = JSON.parse(parsed.msg!);
    expect(msg.data.device.name).toBe(HOSTILE_PRODUCT);
    expect(msg.hostname).toBe('総務課-PC\n01');
    expect(target.stats()[0]).toMatchObject({ name: 'syslog-udp', sent: 1, dropped: 0 });
  });

  it('sends octet-counted frames over TCP, many events in order', async () => {
    const chunks: Buffer[] = [];
    const server = net.createServer((socket) => socket.on('data', (chunk) => chunks.push(chunk)));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    closers.push(() => new Promise((resolve) => server.close(() => resolve())));
    const { port } = server.address() as net.AddressInfo;
    const target = start({ targets: [{ type: 'syslog', transport: 'tcp', host: '127.0.0.1', port, name: 'siem' }] });
    const entries = journal(300);
    target.forward(DEVICE, hostileEntries());
    target.forward(DEVICE, entries);
    await until(() => parseOctetCounted(Buffer.concat(chunks)).messages.length === 301, '301 frames');
    const { messages, rest } = parseOctetCounted(Buffer.concat(chunks));
    expect(rest).toHaveLength(0);
    const parsed = messages.map(parseSyslog);
    expect(parsed[0]!.sd[0]!.usbName).toBe(HOSTILE_IN_SD);
    expect(parsed.slice(1).map((m) => Number(m.sd[0]!.seq))).toEqual(entries.map((e) => e.seq));
    expect(parsed[1]!.header[1]).toBe('soumu-pc-001');
    expect(target.stats()[0]).toMatchObject({ name: 'siem', sent: 301, dropped: 0 });
  });

  it('keeps the newest events and counts the dropped ones while the TCP collector is down, then delivers', async () => {
    // A port with nothing listening: take one and close it.
    const probe = net.createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const { port } = probe.address() as net.AddressInfo;
    await new Promise((resolve) => probe.close(resolve));

    const target = start({ queueLength: 5, targets: [{ type: 'syslog', transport: 'tcp', host: '127.0.0.1', port }] });
    const entries = journal(12);
    target.forward(DEVICE, entries);
    // forward() only queued (synchronously, before any network): the 5 newest wait, 7 were dropped.
    expect(target.stats()[0]).toMatchObject({ queued: 5, dropped: 7, sent: 0 });
    await until(() => target.stats()[0]!.errors > 0, 'a connection error');

    const chunks: Buffer[] = [];
    const server = net.createServer((socket) => socket.on('data', (chunk) => chunks.push(chunk)));
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
    closers.push(() => new Promise((resolve) => server.close(() => resolve())));
    await until(() => parseOctetCounted(Buffer.concat(chunks)).messages.length === 5, 'the 5 newest events');
    const seqs = parseOctetCounted(Buffer.concat(chunks)).messages.map((m) => Number(parseSyslog(m).sd[0]!.seq));
    expect(seqs).toEqual([8, 9, 10, 11, 12]);
  });

  it('appends JSON lines to a 0600 file, one line per event whatever the strings hold', async () => {
    const file = path.join(dir, 'events.jsonl');
    const target = start({ targets: [{ type: 'jsonl', path: file }] });
    target.forward(DEVICE, hostileEntries());
    target.forward(DEVICE, journal(3));
    await until(() => target.stats()[0]!.sent === 4, 'four lines');
    const lines = (await fs.readFile(file, 'utf8')).split('\n');
    expect(lines.pop()).toBe('');
    expect(lines).toHaveLength(4);
    const first = JSON.parse(lines[0]!);
    expect(first).toMatchObject({ deviceId: DEVICE, hostname: 'soumu-pc-001', seq: 1, type: 'device.blocked', forwardedAt: '2026-11-25T00:00:00.000Z' });
    expect(first.data.device.name).toBe(HOSTILE_PRODUCT);
    expect((await fs.stat(file)).mode & 0o777).toBe(0o600);
  });

  it('rotates the file by size, keeping maxFiles older files', async () => {
    const file = path.join(dir, 'events.jsonl');
    const target = start({ targets: [{ type: 'jsonl', path: file, maxFileBytes: 4096, maxFiles: 2 }] });
    let sent = 0;
    for (let batch = 0; batch < 12; batch += 1) {
      target.forward(DEVICE, journal(5, { seq: batch * 5, hash: 'f'.repeat(64) }));
      sent += 5;
      await until(() => target.stats()[0]!.sent === sent, `batch ${batch}`);
    }
    const names = (await fs.readdir(dir)).sort();
    expect(names).toEqual(['events.jsonl', 'events.jsonl.1', 'events.jsonl.2']);
    for (const name of names) {
      const size = (await fs.stat(path.join(dir, name))).size;
      expect(size).toBeLessThanOrEqual(4096);
      const content = await fs.readFile(path.join(dir, name), 'utf8');
      for (const line of content.trimEnd().split('\n')) expect(() => JSON.parse(line)).not.toThrow();
    }
    const newest = (await fs.readFile(file, 'utf8')).trimEnd().split('\n').map((line) => JSON.parse(line).seq);
    expect(newest.at(-1)).toBe(60);
  });

  it('fans out to every target independently: a dead collector does not hold the file back', async () => {
    const file = path.join(dir, 'events.jsonl');
    const target = start({ targets: [{ type: 'syslog', transport: 'tcp', host: '127.0.0.1', port: 9 }, { type: 'jsonl', path: file }] });
    target.forward(DEVICE, journal(3));
    await until(() => target.stats()[1]!.sent === 3, 'the file');
    expect(target.stats()[0]!.sent).toBe(0);
  });

  it('never throws from forward, and refuses an invalid configuration at creation', () => {
    expect(() => EventForwarder.create({ targets: [{ type: 'syslog', transport: 'udp', host: 'h', port: 0 }] })).toThrow();
    expect(() => EventForwarder.create({ targets: [{ type: 'jsonl', path: '/a' }, { type: 'jsonl', path: '/b' }] })).toThrow(/duplicate/);
    const target = start({ targets: [{ type: 'jsonl', path: path.join(dir, 'no-such-dir', 'x.jsonl') }] });
    expect(() => target.forward(DEVICE, hostileEntries())).not.toThrow();
  });
});
