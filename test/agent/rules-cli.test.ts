import fs from 'node:fs/promises';
import path from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { parseRulesFile, rulesCommand } from '../../agent/rules-cli.js';
import { AGENT_CLI, cli } from '../helpers/processes.js';
import { useTempDirs } from '../helpers/temp-dir.js';

const FIXTURES = path.join(import.meta.dirname, '../fixtures/policies');
const REGISTERED = path.join(FIXTURES, 'registered.rules');
const BAD = path.join(FIXTURES, 'bad.rules');
const tempDir = useTempDirs();

const STICK = { id: '0930:6545', serial: 'A1B2C3', interfaces: ['08:06:50'] };
const OTHER_STICK = { id: '0930:6545', serial: 'ZZZ', interfaces: ['08:06:50'] };
const KEYBOARD = { id: '046d:c31c', interfaces: ['03:01:01'] };
const BADUSB = { id: '0930:6545', serial: 'A1B2C3', interfaces: ['08:06:50', '03:01:01'] };
const VENDOR = { id: 'abcd:0001', interfaces: ['ff:00:00'] };

/** Runs `rules …` in this process with captured output. */
async function inProcess(argv: string[], stdin = ''): Promise<{ code: number; stdout: string; stderr: string }> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  const chunks = { stdout: '', stderr: '' };
  stdout.on('data', (chunk: Buffer) => (chunks.stdout += chunk.toString()));
  stderr.on('data', (chunk: Buffer) => (chunks.stderr += chunk.toString()));
  const code = await rulesCommand(argv, { stdout, stderr, stdin: Readable.from([stdin]) });
  return { code, ...chunks };
}

async function deviceFile(content: string): Promise<string> {
  const file = path.join(await tempDir(), 'devices.json');
  await fs.writeFile(file, content);
  return file;
}

const jsonLines = (...devices: object[]): string => devices.map((device) => JSON.stringify(device)).join('\n') + '\n';

describe('sekimori-agent rules check', () => {
  it('exits 0 when every rule parses', async () => {
    const result = await cli(AGENT_CLI, ['rules', 'check', REGISTERED]);
    expect(result).toMatchObject({ code: 0, stderr: '' });
    expect(result.stdout).toBe('4 rules OK, implicit block\n');
  });

  it('exits 1 and prints line:column: message for every bad line, not just the first', async () => {
    const result = await cli(AGENT_CLI, ['rules', 'check', BAD]);
    expect(result.code).toBe(1);
    const lines = result.stdout.trim().split('\n');
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/^3:14: /);
    expect(lines[1]).toMatch(/^5:27: this string has no closing "$/);
  });

  it('reports a misspelt or repeated sekimori directive instead of ignoring it', () => {
    const file = parseRulesFile('# sekimori: implicit alow\n# sekimori: implicit allow\n#   sekimori: implicit reject\nallow\n');
    expect(file.errors.map((error) => [error.line, error.column, error.message.slice(0, 20)])).toEqual([
      [1, 3, "unknown directive 'i"],
      [3, 5, 'the implicit target '],
    ]);
    expect(file.implicit).toBe('allow');
    expect(file.lines).toEqual([4]);
  });

  it('reads CRLF line ends and a byte-order mark like USBGuard rule files from Windows', () => {
    const file = parseRulesFile('\uFEFFallow id 0930:6545\r\n\r\nblock\r\n');
    expect(file.errors).toEqual([]);
    expect(file.lines).toEqual([1, 3]);
    expect(file.texts).toEqual(['allow id 0930:6545', 'block']);
  });

  it('exits 1 with one line on stderr for a file that does not exist', async () => {
    const result = await inProcess(['check', '/nonexistent/rules.conf']);
    expect(result).toMatchObject({ code: 1, stdout: '' });
    expect(result.stderr).toBe('sekimori-agent: cannot read /nonexistent/rules.conf: ENOENT\n');
  });
});

describe('sekimori-agent rules eval', () => {
  it('prints one decision with the 1-based line of the deciding rule for a single device', async () => {
    const result = await cli(AGENT_CLI, ['rules', 'eval', '--rules', REGISTERED, '--device', await deviceFile(JSON.stringify(STICK))]);
    expect(result).toEqual({ code: 0, stdout: '{"target":"allow","rule":5}\n', stderr: '' });
  });

  it('prints one decision per JSON line, in order, with "implicit" when no rule matches', async () => {
    const file = await deviceFile(jsonLines(STICK, OTHER_STICK, KEYBOARD, BADUSB, VENDOR));
    const result = await cli(AGENT_CLI, ['rules', 'eval', '--rules', REGISTERED, '--device', file]);
    expect(result.code).toBe(0);
    expect(result.stdout.trim().split('\n').map((line) => JSON.parse(line))).toEqual([
      { target: 'allow', rule: 5 },
      { target: 'block', rule: 6 },
      { target: 'allow', rule: 7 },
      { target: 'reject', rule: 4 },
      { target: 'block', rule: 'implicit' },
    ]);
  });

  it('reads a single device written over several lines', async () => {
    const result = await inProcess(['eval', '--rules', REGISTERED, '--device', await deviceFile(JSON.stringify(KEYBOARD, null, 2))]);
    expect(result).toEqual({ code: 0, stdout: '{"target":"allow","rule":7}\n', stderr: '' });
  });

  it('honours the implicit directive of the rules file', async () => {
    const rules = path.join(await tempDir(), 'allow.rules');
    await fs.writeFile(rules, '# sekimori: implicit allow\nblock with-interface one-of { 08:*:* }\n');
    const result = await inProcess(['eval', '--rules', rules, '--device', await deviceFile(jsonLines(VENDOR, STICK))]);
    expect(result.stdout).toBe('{"target":"allow","rule":"implicit"}\n{"target":"block","rule":2}\n');
  });

  it('reads devices from standard input with --device -', async () => {
    const result = await inProcess(['eval', '--rules', REGISTERED, '--device', '-'], jsonLines(KEYBOARD));
    expect(result).toEqual({ code: 0, stdout: '{"target":"allow","rule":7}\n', stderr: '' });
  });

  it('accepts upper-case hex and MTP interface names', async () => {
    const phone = { id: '18D1:4EE1', interfaces: ['FF:FF:00'], interfaceNames: ['MTP'] };
    const result = await inProcess(['eval', '--rules', REGISTERED, '--device', await deviceFile(JSON.stringify(phone))]);
    expect(result.stdout).toBe('{"target":"block","rule":6}\n');
  });

  it.each([
    ['an unknown field', { ...KEYBOARD, vendor: 'Logitech' }, /line 2: Unrecognized key: "vendor"/],
    ['a missing interfaces list', { id: '046d:c31c' }, /line 2: interfaces: /],
    ['a malformed id', { id: '046dc31c', interfaces: [] }, /line 2: id: must be vvvv:pppp in hex/],
    ['interface names that do not match the interfaces', { ...KEYBOARD, interfaceNames: [] }, /line 2: interfaceNames must have one entry per interface$/m],
  ])('stops at a device line with %s, after printing the decisions before it, and exits 1', async (_name, bad, message) => {
    const file = await deviceFile(jsonLines(KEYBOARD, bad, KEYBOARD));
    const result = await inProcess(['eval', '--rules', REGISTERED, '--device', file]);
    expect(result.code).toBe(1);
    expect(result.stdout).toBe('{"target":"allow","rule":7}\n');
    expect(result.stderr).toMatch(message);
  });

  it('stops at a line that is not JSON', async () => {
    const result = await inProcess(['eval', '--rules', REGISTERED, '--device', await deviceFile(jsonLines(KEYBOARD) + '{"id":\n')]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/line 2: not valid JSON/);
  });

  it('refuses to evaluate with a rules file that has a bad line, naming it', async () => {
    const result = await inProcess(['eval', '--rules', BAD, '--device', await deviceFile(JSON.stringify(KEYBOARD))]);
    expect(result.code).toBe(1);
    expect(result.stdout).toBe('');
    expect(result.stderr).toContain(`${BAD}:3:14: `);
  });

  it('streams a large batch of devices in order', async () => {
    const devices = Array.from({ length: 20_000 }, (_, index) => (index % 2 === 0 ? KEYBOARD : OTHER_STICK));
    const result = await inProcess(['eval', '--rules', REGISTERED, '--device', await deviceFile(jsonLines(...devices))]);
    const lines = result.stdout.trim().split('\n');
    expect(lines).toHaveLength(20_000);
    expect(lines[19_999]).toBe('{"target":"block","rule":6}');
  });
});

describe('sekimori-agent rules usage', () => {
  it('prints help and exits 0 for --help', async () => {
    for (const argv of [['rules', '--help'], ['rules', 'check', '--help'], ['rules', 'eval', '--help']]) {
      const result = await cli(AGENT_CLI, argv);
      expect(result.code).toBe(0);
      expect(result.stdout).toContain('sekimori-agent rules eval --rules FILE --device DEVICE.json');
    }
  });

  it('lists the rules command in the agent usage', async () => {
    expect((await cli(AGENT_CLI, ['help'])).stdout).toContain('rules check|eval');
  });

  it.each([
    [['rules', 'eval', '--rules', REGISTERED, '--device', 'x', '--verbose']],
    [['rules', 'eval', '--device', 'x']],
    [['rules', 'check']],
    [['rules', 'check', 'a', 'b']],
    [['rules', 'lint', 'a']],
    [['rules']],
  ])('exits 2 with the usage for %j', async (argv) => {
    const result = await cli(AGENT_CLI, argv);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('Usage: sekimori-agent rules check FILE');
  });
});
