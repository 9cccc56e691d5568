import fs from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { parseUntrustedJson } from '../shared/safe-json.js';
import { parseRuleSet, UsbDeviceIdentitySchema, type Rule, type RuleTarget, type UsbDeviceIdentity } from '../shared/usb-rules/index.js';
import { decideUsb, type UsbPolicyInput } from './usb/policy-engine.js';

/**
 * `sekimori-agent rules check FILE` and `sekimori-agent rules eval --rules FILE --device FILE`:
 * the rule language for administrators and scripts (issue 3). Exit codes as the rest of the CLI:
 * 0 ok, 1 failed (bad rules, bad device, unreadable file), 2 usage error.
 *
 * A rules FILE is USBGuard's rules.conf: one rule per line, blank lines and `#` comments skipped,
 * LF or CRLF, a leading BOM ignored. The implicit target (no rule matches) is `block`, unless a
 * comment line says otherwise: `# sekimori: implicit allow` (or `block`, `reject`). Any other
 * `# sekimori:` comment is an error, so a typo never silently leaves the default in place.
 */

export const RULES_USAGE = `Usage: sekimori-agent rules check FILE
       sekimori-agent rules eval --rules FILE --device DEVICE.json

  check   parse every rule of FILE (USBGuard rules.conf syntax); prints line:column: message for
          each bad line; exit 0 when all parse, 1 otherwise
  eval    print one JSON line {"target":…,"rule":<line>|"implicit"} per device of DEVICE.json,
          a single JSON object or JSON lines (one device per line); "-" reads standard input.
          A device: {"id":"0930:6545","interfaces":["08:06:50"]} plus optional serial, name, hash,
          parentHash, viaPort, connectType, interfaceNames. Stops at the first bad device (exit 1).

In FILE, the line "# sekimori: implicit allow|block|reject" sets the target when no rule
matches (default: block).
Exit codes: 0 ok, 1 failed (reason on stderr), 2 usage error.`;

/** Largest single (pretty-printed) device document read whole; JSON lines are streamed instead. */
const MAX_DOCUMENT_BYTES = 1024 * 1024;
/** Output is flushed in chunks of about this size, waiting for the pipe when it is full. */
const OUTPUT_CHUNK = 64 * 1024;

type Io = { readonly stdout: NodeJS.WritableStream; readonly stderr: NodeJS.WritableStream; readonly stdin: NodeJS.ReadableStream };

const defaultIo: Io = { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin };

/** Runs `rules …`; resolves to the exit code. Never rejects for bad input (only for bugs). */
export async function rulesCommand(argv: string[], io: Io = defaultIo): Promise<number> {
  const [subcommand, ...rest] = argv;
  try {
    switch (subcommand) {
      case 'check':
        return await check(rest, io);
      case 'eval':
        return await evaluateDevices(rest, io);
      case '--help':
      case '-h':
      case 'help':
        io.stdout.write(RULES_USAGE + '\n');
        return 0;
      case undefined:
        throw new UsageError('rules: expected check or eval');
      default:
        throw new UsageError(`unknown rules command: ${subcommand}`);
    }
  } catch (error) {
    if (error instanceof UsageError) {
      io.stderr.write(`sekimori-agent: ${error.message}\n\n${RULES_USAGE}\n`);
      return 2;
    }
    if (error instanceof Failure) {
      io.stderr.write(`sekimori-agent: ${error.message}\n`);
      return 1;
    }
    throw error;
  }
}

class UsageError extends Error {}
class Failure extends Error {}

function parse(argv: string[], options: Record<string, { type: 'string' | 'boolean' }>): { values: Record<string, string | boolean | undefined>; positionals: string[] } {
  try {
    return parseArgs({ args: argv, options: { ...options, help: { type: 'boolean', short: 'h' } }, strict: true, allowPositionals: true });
  } catch (error) {
    throw new UsageError(error instanceof Error ? error.message : String(error));
  }
}

async function check(argv: string[], io: Io): Promise<number> {
  const { values, positionals } = parse(argv, {});
  if (values.help === true) return help(io);
  if (positionals.length !== 1) throw new UsageError('rules check takes exactly one FILE');
  const file = await readRulesFile(positionals[0] as string);
  for (const error of file.errors) io.stdout.write(`${error.line}:${error.column}: ${error.message}\n`);
  if (file.errors.length > 0) return 1;
  io.stdout.write(`${file.rules.length} rule${file.rules.length === 1 ? '' : 's'} OK, implicit ${file.implicit}\n`);
  return 0;
}

async function evaluateDevices(argv: string[], io: Io): Promise<number> {
  const { values, positionals } = parse(argv, { rules: { type: 'string' }, device: { type: 'string' } });
  if (values.help === true) return help(io);
  if (positionals.length > 0) throw new UsageError(`unexpected argument: ${positionals[0]}`);
  if (typeof values.rules !== 'string') throw new UsageError('--rules FILE is required');
  if (typeof values.device !== 'string') throw new UsageError('--device FILE is required');
  const file = await readRulesFile(values.rules);
  if (file.errors.length > 0) {
    for (const error of file.errors) io.stderr.write(`${values.rules}:${error.line}:${error.column}: ${error.message}\n`);
    throw new Failure(`${values.rules} has ${file.errors.length} bad line${file.errors.length === 1 ? '' : 's'}; nothing evaluated`);
  }
  const policy: UsbPolicyInput = {
    policy: { mode: 'enforce', usb: { implicit: file.implicit } },
    rules: file.rules,
    ruleLines: file.lines,
    ruleTexts: file.texts,
    readOnly: [],
    exceptions: [],
  };
  const now = new Date();
  const output = new ChunkedWriter(io.stdout);
  const deviceFile = values.device;
  try {
    for await (const entry of readDevices(deviceFile, io)) {
      if (!entry.ok) throw new Failure(`${deviceFile === '-' ? 'standard input' : deviceFile} line ${entry.line}: ${entry.message}`);
      const decision = decideUsb({ device: entry.device, policy, now });
      const rule = decision.rule.line === null ? '"implicit"' : String(decision.rule.line);
      await output.write(`{"target":"${decision.target}","rule":${rule}}\n`);
    }
  } finally {
    // Decisions before a bad device are printed: the exit code says the batch is incomplete.
    await output.flush();
  }
  return 0;
}

function help(io: Io): number {
  io.stdout.write(RULES_USAGE + '\n');
  return 0;
}

// ---------------------------------------------------------------------------------------------
// Rules file

interface RulesFile {
  readonly rules: Rule[];
  /** 1-based file line of each rule. */
  readonly lines: number[];
  readonly texts: string[];
  readonly implicit: RuleTarget;
  readonly errors: { readonly line: number; readonly column: number; readonly message: string }[];
}

const DIRECTIVE = /^\s*#\s*sekimori:\s*(.*?)\s*$/;
const IMPLICIT = /^implicit\s+(\S+)$/;
const TARGETS: readonly RuleTarget[] = ['allow', 'block', 'reject'];

async function readRulesFile(path: string): Promise<RulesFile> {
  let text: string;
  try {
    text = await fs.readFile(path, 'utf8');
  } catch (error) {
    throw new Failure(`cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
  }
  return parseRulesFile(text);
}

/** Checks every line (not just up to the first error) and reads the implicit directive. */
export function parseRulesFile(text: string): RulesFile {
  const result: RulesFile = { rules: [], lines: [], texts: [], implicit: 'block', errors: [] };
  let implicitLine: number | null = null;
  const withoutBom = text.startsWith('\uFEFF') ? text.slice(1) : text;
  const lines = withoutBom.split('\n');
  for (const [index, raw] of lines.entries()) {
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    const lineNumber = index + 1;
    const directive = DIRECTIVE.exec(line);
    if (directive !== null) {
      const column = line.indexOf('sekimori:') + 1;
      const implicit = IMPLICIT.exec(directive[1] ?? '');
      const target = TARGETS.find((candidate) => candidate === implicit?.[1]);
      if (target === undefined) {
        result.errors.push({ line: lineNumber, column, message: `unknown directive '${directive[1] ?? ''}'; the only one is '# sekimori: implicit allow|block|reject'` });
      } else if (implicitLine !== null) {
        result.errors.push({ line: lineNumber, column, message: `the implicit target is already set on line ${implicitLine}` });
      } else {
        implicitLine = lineNumber;
        (result as { implicit: RuleTarget }).implicit = target;
      }
      continue;
    }
    // One line at a time so every bad line is reported; parseRuleSet skips blanks and comments.
    const parsed = parseRuleSet([line]);
    if (!parsed.ok) {
      result.errors.push({ line: lineNumber, column: parsed.error.column, message: parsed.error.message.replace(/^line \d+, column \d+: /, '') });
      continue;
    }
    const rule = parsed.value[0];
    if (rule === undefined) continue;
    result.rules.push(rule);
    result.lines.push(lineNumber);
    result.texts.push(line.trim());
  }
  return result;
}

// ---------------------------------------------------------------------------------------------
// Devices

/** The device format of `rules eval` (issue 3): flatter than `UsbDeviceIdentity`, strict. */
const DeviceInputSchema = z.strictObject({
  id: z.string().regex(/^[0-9a-fA-F]{4}:[0-9a-fA-F]{4}$/, 'must be vvvv:pppp in hex'),
  interfaces: z.array(z.string().regex(/^[0-9a-fA-F]{2}:[0-9a-fA-F]{2}:[0-9a-fA-F]{2}$/, 'must be cc:ss:pp in hex')),
  serial: z.string().optional(),
  name: z.string().optional(),
  hash: z.string().optional(),
  parentHash: z.string().optional(),
  viaPort: z.string().optional(),
  connectType: z.string().optional(),
  interfaceNames: z.array(z.string()).optional(),
});

type DeviceEntry = { readonly ok: true; readonly device: UsbDeviceIdentity } | { readonly ok: false; readonly line: number; readonly message: string };

/** Validates one parsed JSON value as a device; hex is accepted in either case and lower-cased. */
export function toDevice(json: unknown): { ok: true; device: UsbDeviceIdentity } | { ok: false; message: string } {
  const input = DeviceInputSchema.safeParse(json);
  if (!input.success) return { ok: false, message: describe(input.error) };
  const value = input.data;
  const [vendorId = '', productId = ''] = value.id.toLowerCase().split(':');
  const identity = UsbDeviceIdentitySchema.safeParse({
    vendorId,
    productId,
    serial: value.serial ?? '',
    name: value.name ?? '',
    hash: value.hash ?? '',
    parentHash: value.parentHash ?? '',
    viaPort: value.viaPort ?? '',
    connectType: value.connectType ?? '',
    interfaces: value.interfaces.map((code) => code.toLowerCase()),
    ...(value.interfaceNames === undefined ? {} : { interfaceNames: value.interfaceNames }),
  });
  if (!identity.success) return { ok: false, message: describe(identity.error) };
  return { ok: true, device: identity.data };
}

function describe(error: z.ZodError): string {
  const issue = error.issues[0];
  if (issue === undefined) return 'invalid device';
  const path = issue.path.map(String).join('.');
  // Refinements already name their field ("interfaceNames must have …"); do not say it twice.
  return path === '' || issue.message.startsWith(path) ? issue.message : `${path}: ${issue.message}`;
}

function parseDevice(text: string, line: number): DeviceEntry {
  const json = parseUntrustedJson(text);
  if (!json.ok) return { ok: false, line, message: json.error.message };
  const device = toDevice(json.value);
  return device.ok ? device : { ok: false, line, message: device.message };
}

/**
 * Streams devices from a file of JSON lines (constant memory), or reads one device document that
 * spans several lines (pretty-printed JSON) when the first non-blank line is not JSON by itself.
 */
async function* readDevices(path: string, io: Io): AsyncGenerator<DeviceEntry> {
  let input: NodeJS.ReadableStream;
  if (path === '-') {
    input = io.stdin;
  } else {
    try {
      // Opened first so a missing file is a clear failure, not a stream error mid-way.
      const handle = await fs.open(path, 'r');
      input = handle.createReadStream({ encoding: 'utf8' });
    } catch (error) {
      throw new Failure(`cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
    }
  }
  const lines = createInterface({ input, crlfDelay: Infinity });
  let lineNumber = 0;
  let document: string[] | null = null;
  let documentLength = 0;
  let sawDevice = false;
  try {
    for await (const raw of lines) {
      lineNumber++;
      const line = lineNumber === 1 && raw.startsWith('\uFEFF') ? raw.slice(1) : raw;
      if (document !== null) {
        documentLength += line.length + 1;
        if (documentLength > MAX_DOCUMENT_BYTES) {
          yield { ok: false, line: 1, message: `not JSON lines, and too large for a single device document (over ${MAX_DOCUMENT_BYTES} bytes)` };
          return;
        }
        document.push(line);
        continue;
      }
      if (line.trim() === '') continue;
      const entry = parseDevice(line, lineNumber);
      if (!entry.ok && !sawDevice && line.trimStart().startsWith('{') && parseUntrustedJson(line).ok === false) {
        // Not a complete JSON value on its own line: a pretty-printed single device.
        document = [line];
        documentLength = line.length + 1;
        continue;
      }
      sawDevice = true;
      yield entry;
      if (!entry.ok) return;
    }
    // An empty file is an empty batch: no output, exit 0.
    if (document !== null) yield parseDevice(document.join('\n'), 1);
  } finally {
    lines.close();
  }
}

/** Buffers output lines and respects the stream's back-pressure, so memory stays bounded. */
class ChunkedWriter {
  private buffer = '';
  constructor(private readonly stream: NodeJS.WritableStream) {}

  async write(text: string): Promise<void> {
    this.buffer += text;
    if (this.buffer.length >= OUTPUT_CHUNK) await this.flush();
  }

  async flush(): Promise<void> {
    if (this.buffer === '') return;
    const chunk = this.buffer;
    this.buffer = '';
    if (!this.stream.write(chunk)) await new Promise<void>((resolve) => this.stream.once('drain', () => resolve()));
  }
}
