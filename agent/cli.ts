#!/usr/bin/env node
import fs from 'node:fs/promises';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { EventDataSchema, isKnownEventType } from '../shared/journal.js';
import { LocalStatusSchema } from '../shared/ipc.js';
import { parseUntrustedJson } from '../shared/safe-json.js';
import { AgentNotRunning, callAgent } from './ipc/ipc-client.js';
import { Journal } from './journal/journal.js';
import { scanJournal } from './journal/journal-scan.js';
import { createLogger } from './logger.js';
import { AgentConfigError, StateDirBusy, journalOpenFindings, startAgent } from './main.js';
import { readHostFacts } from './platform/host-facts.js';
import { rulesCommand } from './rules-cli.js';
import { MAX_AUTHTOK_BYTES, pamVerify } from './pam-verify.js';
import { enrollDevice } from './reporter/enrollment.js';
import { AgentConfigSchema, CredentialsSchema, ReporterStateSchema, StatePaths, defaultStateDir, ipcEndpoint, readJsonFile } from './state.js';
import { StateLock } from './state-lock.js';
import { AGENT_VERSION } from './version.js';

/**
 * `sekimori-agent`: the service entry point and the operators' tool. The command-line contract is
 * documented in the README and kept stable: exit 0 success, 1 an expected failure (with one clear
 * line on stderr), 2 a usage error.
 */

const USAGE = `Usage: sekimori-agent <command> [options]

Commands:
  run             run the agent service (enrols on first run)
                  --state DIR --server URL --enroll-token TOKEN
                  [--sysfs-root DIR]  (a sysfs tree other than /sys: VMs and tests)
                  [--socket PATH]     (the local socket; default /run/sekimori/agent.sock)
  status          print the agent's state            --state DIR [--socket PATH] [--json]
  pam-verify      PAM second factor (pam_exec expose_authtok): PIN+code on stdin,
                  PAM_USER from the environment      [--state DIR] [--socket PATH]
  enroll          enrol once and exit                --state DIR --server URL --token TOKEN
  journal append  append one event to the journal    --state DIR --type TYPE --data JSON
  verify-journal  verify the journal's hash chain    --state DIR
  rules check|eval  check USB rules / decide devices  (rules --help)
  help            this text (also: <command> --help)

--state defaults to ${defaultStateDir(process.platform, process.env)} on this platform.
Exit codes: 0 ok, 1 failed (reason on stderr), 2 usage error.`;

class UsageError extends Error {}
class Failure extends Error {}

type Options = Record<string, string | boolean | undefined>;

const out = (line: string): void => void process.stdout.write(line + '\n');

function parse(argv: string[], options: ParseArgsConfig['options']): Options {
  try {
    const { values, positionals } = parseArgs({ args: argv, options: { ...options, help: { type: 'boolean' } }, strict: true, allowPositionals: true });
    if (positionals.length > 0) throw new UsageError(`unexpected argument: ${positionals[0]}`);
    return values;
  } catch (error) {
    if (error instanceof UsageError) throw error;
    throw new UsageError(error instanceof Error ? error.message : String(error));
  }
}

const stateOption = { state: { type: 'string' } } as const;
const stateDir = (values: Options): string => (typeof values.state === 'string' ? values.state : defaultStateDir(process.platform, process.env));
const text = (values: Options, name: string): string | null => (typeof values[name] === 'string' ? values[name] : null);
const socketOption = { socket: { type: 'string' } } as const;

/** The agent's socket: `--socket`, else the config file's (when readable: it is root-only), else the default. */
async function endpointOf(values: Options, paths: StatePaths): Promise<string> {
  const configured = await readJsonFile(paths.config, AgentConfigSchema).catch(() => null);
  return ipcEndpoint(process.platform, paths, text(values, 'socket') ?? configured?.ipc?.socketPath);
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      out(USAGE);
      return command === undefined ? 2 : 0;
    case 'run':
      return run(rest);
    case 'status':
      return status(rest);
    case 'enroll':
      return enroll(rest);
    case 'journal':
      if (rest[0] !== 'append') throw new UsageError(`unknown journal command: ${rest[0] ?? '(none)'}`);
      return journalAppend(rest.slice(1));
    case 'verify-journal':
      return verifyJournal(rest);
    case 'rules':
      return rulesCommand(rest);
    case 'pam-verify':
      return pamVerifyCommand(rest);
    case '--version':
      out(AGENT_VERSION);
      return 0;
    default:
      throw new UsageError(`unknown command: ${command}`);
  }
}

async function run(argv: string[]): Promise<number> {
  const values = parse(argv, { ...stateOption, ...socketOption, server: { type: 'string' }, 'enroll-token': { type: 'string' }, 'sysfs-root': { type: 'string' } });
  if (values.help) return help('run --state DIR --server URL --enroll-token TOKEN [--sysfs-root DIR] [--socket PATH]');
  const logger = createLogger();
  let agent;
  try {
    agent = await startAgent({
      stateDir: stateDir(values),
      serverUrl: text(values, 'server'),
      enrollToken: text(values, 'enroll-token'),
      sysfsRoot: text(values, 'sysfs-root') ?? undefined,
      socketPath: text(values, 'socket') ?? undefined,
      logger,
      say: out,
    });
  } catch (error) {
    if (error instanceof StateDirBusy || error instanceof AgentConfigError) throw new Failure(error.message);
    throw error;
  }
  out(`sekimori-agent ${AGENT_VERSION} running; state in ${stateDir(values)}`);
  await new Promise<void>((resolve) => {
    // The handlers stay installed and `stop` is idempotent: a second signal (Ctrl+C reaches every
    // process of the terminal, then `npm start` sends SIGTERM too) must not cut a clean stop short.
    const shutdown = (signal: NodeJS.Signals): void => {
      agent.stop(signal).then(resolve, (error: unknown) => {
        logger.error('shutdown failed', { error: String(error) });
        resolve();
      });
    };
    process.on('SIGINT', shutdown);
    process.on('SIGTERM', shutdown);
  });
  return 0;
}

async function status(argv: string[]): Promise<number> {
  const values = parse(argv, { ...stateOption, ...socketOption, json: { type: 'boolean' } });
  if (values.help) return help('status --state DIR [--socket PATH] [--json]');
  const paths = new StatePaths(stateDir(values));
  let report: Record<string, unknown>;
  try {
    const answer = await callAgent(await endpointOf(values, paths), { id: 1, method: 'status.get' });
    if (!answer.ok) throw new Failure(`the agent refused: ${answer.error.message}`);
    report = { running: true, ...LocalStatusSchema.parse(answer.result) };
  } catch (error) {
    if (!(error instanceof AgentNotRunning)) throw error;
    // Not running: read the state files directly (read-only; nothing is repaired here).
    const credentials = await readJsonFile(paths.credentials, CredentialsSchema);
    const reporter = await readJsonFile(paths.reporter, ReporterStateSchema);
    const scan = await scanJournal(paths.journal);
    report = {
      running: false,
      deviceId: credentials?.deviceId ?? null,
      enrolled: credentials !== null,
      journalLength: scan.count,
      ackSeq: reporter?.ackSeq ?? 0,
      serverUrl: credentials?.serverUrl ?? null,
      lastContactAt: reporter?.lastContactAt ?? null,
    };
  }
  if (values.json) {
    out(JSON.stringify(report));
  } else {
    for (const [key, value] of Object.entries(report)) out(`${key}: ${typeof value === 'object' && value !== null ? JSON.stringify(value) : String(value)}`);
  }
  return 0;
}

/** Runs `action` holding the state lock (no agent may be running), with the journal open. */
async function withJournal<T>(paths: StatePaths, action: (journal: Journal) => Promise<T>): Promise<T> {
  await fs.mkdir(paths.dir, { recursive: true, mode: 0o700 });
  const lock = await StateLock.acquire(paths.lock);
  if (!lock.ok) throw new Failure(`the agent (pid ${lock.heldBy}) holds ${paths.dir}; try again when it is ready`);
  try {
    const { journal, report } = await Journal.open(paths.journal);
    try {
      await journalOpenFindings(journal, report);
      return await action(journal);
    } finally {
      await journal.close();
    }
  } finally {
    await lock.lock.release();
  }
}

async function enroll(argv: string[]): Promise<number> {
  const values = parse(argv, { ...stateOption, server: { type: 'string' }, token: { type: 'string' } });
  if (values.help) return help('enroll --state DIR --server URL --token TOKEN');
  const paths = new StatePaths(stateDir(values));
  if (await readJsonFile(paths.credentials, CredentialsSchema)) throw new Failure(`already enrolled (${paths.credentials})`);
  const outcome = await withJournal(paths, (journal) =>
    enrollDevice({ paths, serverUrl: text(values, 'server'), token: text(values, 'token'), hostFacts: () => readHostFacts(process.platform, AGENT_VERSION), journal }),
  );
  switch (outcome.kind) {
    case 'enrolled':
      out(outcome.credentials.deviceId);
      return 0;
    case 'not-configured':
      throw new UsageError('--server and --token are required (or serverUrl and enrollToken in config.json)');
    case 'refused':
      throw new Failure(`the server refused the enrolment: ${outcome.message} (${outcome.code})`);
    case 'unreachable':
      throw new Failure(`the server is unreachable: ${outcome.message}`);
  }
}

async function journalAppend(argv: string[]): Promise<number> {
  const values = parse(argv, { ...stateOption, type: { type: 'string' }, data: { type: 'string' } });
  if (values.help) return help('journal append --state DIR --type TYPE --data JSON');
  const type = text(values, 'type');
  if (type === null) throw new UsageError('--type is required');
  if (!isKnownEventType(type)) throw new UsageError(`unknown event type: ${type}`);
  let raw: unknown = {};
  if (typeof values.data === 'string') {
    const json = parseUntrustedJson(values.data);
    if (!json.ok) throw new UsageError(`--data: ${json.error.message}`);
    raw = json.value;
  }
  const data = EventDataSchema.safeParse(raw);
  if (!data.success) throw new UsageError(`--data must be a JSON object: ${data.error.issues[0]?.message ?? ''}`);

  const paths = new StatePaths(stateDir(values));
  const endpoint = await endpointOf(values, paths);
  // Through the running agent when there is one; otherwise directly, holding the state lock. An
  // agent that is still starting holds the lock without listening yet, so retry briefly.
  for (let attempt = 0; ; attempt += 1) {
    try {
      const answer = await callAgent(endpoint, { id: 1, method: 'journal.append', params: { type, data: data.data } });
      if (!answer.ok) throw new Failure(`the agent refused: ${answer.error.message}`);
      out(JSON.stringify(answer.result));
      return 0;
    } catch (error) {
      if (!(error instanceof AgentNotRunning)) throw error;
    }
    if (await StateLock.holder(paths.lock) === null) {
      const entry = await withJournal(paths, (journal) => journal.append(type, data.data));
      out(JSON.stringify({ seq: entry.seq, hash: entry.hash }));
      return 0;
    }
    if (attempt >= 50) throw new Failure('the agent holds the state directory but does not answer');
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

async function verifyJournal(argv: string[]): Promise<number> {
  const values = parse(argv, stateOption);
  if (values.help) return help('verify-journal --state DIR');
  const scan = await scanJournal(new StatePaths(stateDir(values)).journal);
  if (scan.tornTail) process.stderr.write(`note: ${scan.tornTail.bytes} bytes of a torn last write after seq ${scan.head.seq}; the agent cuts them off when it starts\n`);
  if (scan.firstBreak) {
    out(`broken at seq ${scan.firstBreak.seq}: ${scan.firstBreak.reason}: ${scan.firstBreak.message}`);
    return 1;
  }
  out(`verified ${scan.count} entries`);
  return 0;
}

async function pamVerifyCommand(argv: string[]): Promise<number> {
  const values = parse(argv, { ...stateOption, ...socketOption });
  if (values.help) return help('pam-verify [--state DIR] [--socket PATH]   (PAM_USER in the environment, PIN+code on stdin)');
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of process.stdin as AsyncIterable<Buffer>) {
    if (size < MAX_AUTHTOK_BYTES) chunks.push(chunk);
    size += chunk.length;
  }
  const result = await pamVerify({ endpoint: await endpointOf(values, new StatePaths(stateDir(values))), env: process.env, stdin: Buffer.concat(chunks) });
  if (result.message) process.stderr.write(result.message + '\n');
  return result.code;
}

function help(synopsis: string): number {
  out(`Usage: sekimori-agent ${synopsis}\n\n${USAGE}`);
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    if (error instanceof UsageError) {
      process.stderr.write(`sekimori-agent: ${error.message}\n\n${USAGE}\n`);
      process.exitCode = 2;
    } else if (error instanceof Failure) {
      process.stderr.write(`sekimori-agent: ${error.message}\n`);
      process.exitCode = 1;
    } else {
      process.stderr.write(`sekimori-agent: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
      process.exitCode = 1;
    }
  },
);
