import fs from 'node:fs';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { ADMIN_ROLES, AdminNameSchema, AdminRoleSchema, DeviceIdSchema, type AdminRole, type DeviceSummary } from '../shared/api.js';
import { TIERS, type Tier } from '../shared/policy.js';
import { assertNever, type Result } from '../shared/result.js';
import { parseUntrustedJson } from '../shared/safe-json.js';
import { createAdminAccount, type CreatedAdmin, type ScryptParams } from './admin-accounts.js';
import { recordAdminAction } from './admin-trail.js';
import { verifyStoredChain } from './chain.js';
import { systemClock, type Clock } from './clock.js';
import { sha256Hex } from './crypto.js';
import { DataDirError } from './data-dir.js';
import { loadOrCreateDataKey } from './data-key.js';
import { DEFAULT_TOKEN_TTL_HOURS, DEFAULT_TOKEN_USES, EnrollmentTokenIdSchema, MAX_TOKEN_TTL_HOURS, MAX_TOKEN_USES, createEnrollmentToken } from './enrollment.js';
import { ListenError, startServer } from './main.js';
import { isTier, policyDocument, publishPolicy } from './policies.js';
import { loadOrCreatePolicyKey } from './policy-key.js';
import { SqliteStore, StoreOpenError } from './sqlite-store.js';
import { TlsFileError, loadTlsFiles, tlsPins } from './tls.js';
import type { EnrollmentTokenSummary } from './store.js';
import { serverVersion } from './version.js';

/**
 * `sekimori-server`'s commands. The command line is a stable contract (operators' scripts and the
 * integration tests rely on it):
 *
 * - exit 0: done; `--help` prints usage on stdout.
 * - exit 1: an expected failure (missing --data, no database, port in use, broken chain), one line
 *   `sekimori-server: <why>` on stderr, never a stack trace.
 * - exit 2: the command line itself is wrong (unknown command or flag, bad value); usage on stderr.
 *
 * stdout carries only each command's result, so scripts can read it; logs go to stderr.
 */

/** Where a command writes, and how `start` learns it should stop (injected by cli.ts, or by tests). */
export interface CliIo {
  stdout(line: string): void;
  stderr(line: string): void;
  /** Resolves when the process is asked to stop (SIGTERM or SIGINT), with the signal's name. */
  untilStopSignal(): Promise<string>;
  readonly clock?: Clock;
}

export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

const PROGRAM = 'sekimori-server';
const DEFAULT_HOST = '127.0.0.1';
const DEFAULT_PORT = 8443;
/** After a stop signal, how long closing may take before the process gives up and exits 1. */
const SHUTDOWN_GRACE_MS = 10_000;

/** The command line is wrong: exit 2 with the command's usage. */
class UsageError extends Error {}
/** An expected failure: exit 1 with this message. */
class CommandError extends Error {}

const MAIN_USAGE = `Usage: ${PROGRAM} <command> [options]

Commands:
  start             Run the server.
  enrollment-token  Print a new enrolment token (one or more uses); list or revoke tokens.
  events            Count or verify the events held for a device.
  devices           List enrolled devices.
  policy set        Validate, sign and publish a tier's policy from a JSON file.
  policy show       Print a tier's current policy.
  create-admin      Create an administrator account (prints its initial password and TOTP secret once).
  tls-pin           Print the SPKI pin (sha256/…) of a TLS certificate, for the agents' config.

Options:
  -h, --help        Show this help.
  --version         Print the server's version.

Run "${PROGRAM} <command> --help" for the options of a command.`;

type Options = NonNullable<ParseArgsConfig['options']>;

interface Command {
  readonly usage: string;
  readonly options: Options;
  /** How many positional arguments the command takes (none when absent). */
  readonly positionals?: number;
  run(values: Values, io: CliIo, positionals: readonly string[]): Promise<number>;
}

type Values = Readonly<Record<string, string | boolean | (string | boolean)[] | undefined>>;

const help = { help: { type: 'boolean', short: 'h' } } as const;
const dataOption = { data: { type: 'string' } } as const;

const COMMANDS: Readonly<Record<string, Command>> = {
  start: {
    usage: `Usage: ${PROGRAM} start --data DIR [--port N] [--host H] [--tls-cert FILE --tls-key FILE]

Runs the server until SIGTERM or SIGINT, then closes it cleanly and exits 0.
Prints "${PROGRAM} listening on http://HOST:PORT" (https:// with TLS) on stdout once listening.
Without TLS, serve only on this machine (development) or behind a TLS proxy: agents refuse
plain http:// to another machine unless their config allows it (labs).

  --data DIR        Data directory (database, admin token); created with mode 0700.
  --port N          TCP port; 0 picks a free one. Default ${DEFAULT_PORT}.
  --host H          Address to listen on. Default ${DEFAULT_HOST}.
  --tls-cert FILE   Serve HTTPS with this certificate (PEM; leaf first, then intermediates).
  --tls-key FILE    Its private key (PEM); refused when group or others may read it.
  -h, --help        Show this help.`,
    options: { ...help, ...dataOption, port: { type: 'string' }, host: { type: 'string' }, 'tls-cert': { type: 'string' }, 'tls-key': { type: 'string' } },
    run: runStart,
  },
  'enrollment-token': {
    usage: `Usage: ${PROGRAM} enrollment-token --data DIR [--ttl-hours N] [--uses N] [--json]
       ${PROGRAM} enrollment-token --data DIR --list [--json]
       ${PROGRAM} enrollment-token --data DIR --revoke ID

Creates an enrolment token and prints it on stdout (one line, nothing else; with --json:
{"id", "token", "uses", "createdAt", "expiresAt"}). A token with --uses N enrols up to N
terminals (one installer config for a whole rollout); anyone holding it can enrol a terminal
until it is used up, expires or is revoked. The server keeps only its hash and its id (enr_…),
which each terminal it enrolls records. Recorded in the admin trail (actor cli).
--list prints every token's id, creation, expiry, uses and state (never the token).
--revoke ID spends every remaining use of the token now (it stays listed).
Works whether or not the server is running.

  --data DIR       Data directory of the server.
  --ttl-hours N    Hours until the token expires. Default ${DEFAULT_TOKEN_TTL_HOURS}, at most ${MAX_TOKEN_TTL_HOURS}.
  --uses N         Terminals it may enrol. Default ${DEFAULT_TOKEN_USES}, at most ${MAX_TOKEN_USES}.
  --json           Print JSON instead (a new token, or the list).
  --list           List the tokens instead of creating one.
  --revoke ID      Revoke the token with this id instead of creating one.
  -h, --help       Show this help.`,
    options: {
      ...help,
      ...dataOption,
      'ttl-hours': { type: 'string' },
      uses: { type: 'string' },
      json: { type: 'boolean' },
      list: { type: 'boolean' },
      revoke: { type: 'string' },
    },
    run: runEnrollmentToken,
  },
  events: {
    usage: `Usage: ${PROGRAM} events --data DIR --device ID (--count | --verify)

  --data DIR     Data directory of the server.
  --device ID    Device id (dev_ followed by 32 hex digits).
  --count        Print how many events are held for the device.
  --verify       Re-verify the device's hash chain from genesis: prints "verified N" (exit 0)
                 or "broken at seq S: reason" (exit 1).
  -h, --help     Show this help.`,
    options: { ...help, ...dataOption, device: { type: 'string' }, count: { type: 'boolean' }, verify: { type: 'boolean' } },
    run: runEvents,
  },
  devices: {
    usage: `Usage: ${PROGRAM} devices --data DIR [--json]

  --data DIR   Data directory of the server.
  --json       Print {"devices": [...]} as JSON instead of a table.
  -h, --help   Show this help.`,
    options: { ...help, ...dataOption, json: { type: 'boolean' } },
    run: runDevices,
  },
  'policy set': {
    usage: `Usage: ${PROGRAM} policy set --data DIR --tier TIER FILE

Publishes the policy document in FILE (JSON) for TIER (${TIERS.join(', ')}), exactly as
PUT /api/v1/admin/policies/TIER does: the server sets version, issuedAt and tier, validates the
document (every USB rule; errors name the rule's line and column), signs it and stores it as the
tier's next version. Prints "tier TIER version N". A bad policy: its problems on stderr, exit 1,
nothing stored. Works whether or not the server is running.

  --data DIR    Data directory of the server.
  --tier TIER   ${TIERS.join(' | ')}
  -h, --help    Show this help.`,
    options: { ...help, ...dataOption, tier: { type: 'string' } },
    positionals: 1,
    run: runPolicySet,
  },
  'policy show': {
    usage: `Usage: ${PROGRAM} policy show --data DIR --tier TIER

Prints the current policy document of TIER as JSON (exit 1 when none was published).

  --data DIR    Data directory of the server.
  --tier TIER   ${TIERS.join(' | ')}
  -h, --help    Show this help.`,
    options: { ...help, ...dataOption, tier: { type: 'string' } },
    run: runPolicyShow,
  },
  'create-admin': {
    usage: `Usage: ${PROGRAM} create-admin --data DIR --user NAME [--role ${ADMIN_ROLES.join('|')}]

Creates an administrator account for the dashboard and prints, once, its initial password (to be
changed at the first login) and its TOTP secret (base32, and as an otpauth:// URI for the
authenticator app). Neither is stored in clear nor logged: the server keeps the password's scrypt
hash and the secret sealed. Role "auditor" may only read. Works whether or not the server runs.

  --data DIR    Data directory of the server (started once already).
  --user NAME   Account name: letters, digits, . _ @ - (at most 64; case-insensitive).
  --role ROLE   ${ADMIN_ROLES.join(' | ')} (default admin).
  -h, --help    Show this help.`,
    options: { ...help, ...dataOption, user: { type: 'string' }, role: { type: 'string' } },
    run: runCreateAdmin,
  },
  'tls-pin': {
    usage: `Usage: ${PROGRAM} tls-pin --cert FILE

Prints the SPKI pin (sha256/<base64>: SHA-256 of the public key's DER SubjectPublicKeyInfo) of
each certificate in FILE (PEM), one line each, in file order: the server's own certificate first
for a full chain. Put it in the agents' config as "tls": {"pins": ["sha256/…"]}. The pin follows
the key, not the certificate: a renewal with the same key keeps it. Reads only FILE.

  --cert FILE   Certificate file (PEM).
  -h, --help    Show this help.`,
    options: { ...help, cert: { type: 'string' } },
    run: runTlsPin,
  },
};

/** Commands with a sub-command (`policy set`) are keyed by both words. */
function commandName(argv: readonly string[]): { name: string | undefined; rest: readonly string[] } {
  const [first, second, ...rest] = argv;
  if (first !== undefined && second !== undefined && COMMANDS[`${first} ${second}`] !== undefined) {
    return { name: `${first} ${second}`, rest };
  }
  return { name: first, rest: argv.slice(1) };
}

/** Runs one command line (without `node` and the script) and returns the exit code. */
export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  const { name, rest } = commandName(argv);
  if (name === '--help' || name === '-h' || name === 'help') {
    io.stdout(MAIN_USAGE);
    return EXIT_OK;
  }
  if (name === '--version') {
    io.stdout(serverVersion());
    return EXIT_OK;
  }
  const command = name === undefined ? undefined : COMMANDS[name];
  if (command === undefined) {
    io.stderr(name === undefined ? `${PROGRAM}: no command given` : `${PROGRAM}: unknown command ${JSON.stringify(name)}`);
    io.stderr(MAIN_USAGE);
    return EXIT_USAGE;
  }
  try {
    const { values, positionals } = parseCommandLine(rest, command.options);
    if (values.help === true) {
      io.stdout(command.usage);
      return EXIT_OK;
    }
    const expected = command.positionals ?? 0;
    if (positionals.length !== expected) {
      throw new UsageError(expected === 0 ? `unexpected argument ${JSON.stringify(positionals[0])}` : `expected ${expected} argument(s), got ${positionals.length}`);
    }
    return await command.run(values, io, positionals);
  } catch (error) {
    if (error instanceof UsageError) {
      io.stderr(`${PROGRAM}: ${error.message}`);
      io.stderr(command.usage);
      return EXIT_USAGE;
    }
    if (isExpected(error)) {
      io.stderr(`${PROGRAM}: ${error.message}`);
      return EXIT_FAILURE;
    }
    throw error;
  }
}

function parseCommandLine(args: readonly string[], options: Options): { values: Values; positionals: readonly string[] } {
  try {
    // Positionals are counted by runCli, so a stray argument is still a usage error.
    const { values, positionals } = parseArgs({ args: [...args], options, strict: true, allowPositionals: true });
    return { values, positionals };
  } catch (error) {
    // parseArgs' own errors (unknown flag, missing value, stray argument) are usage errors.
    if (error instanceof TypeError && String((error as NodeJS.ErrnoException).code).startsWith('ERR_PARSE_ARGS')) {
      throw new UsageError(error.message);
    }
    throw error;
  }
}

function isExpected(error: unknown): error is Error {
  return (
    error instanceof CommandError ||
    error instanceof StoreOpenError ||
    error instanceof DataDirError ||
    error instanceof ListenError ||
    error instanceof TlsFileError
  );
}

async function runStart(values: Values, io: CliIo): Promise<number> {
  const dataDir = requireData(values);
  const host = stringValue(values, 'host') ?? DEFAULT_HOST;
  if (host === '') throw new UsageError('--host must not be empty');
  const port = parsePort(stringValue(values, 'port'));
  const tlsCert = stringValue(values, 'tls-cert');
  const tlsKey = stringValue(values, 'tls-key');
  if ((tlsCert === undefined) !== (tlsKey === undefined)) throw new UsageError('--tls-cert and --tls-key go together');
  const tls = tlsCert !== undefined && tlsKey !== undefined ? loadTlsFiles(tlsCert, tlsKey) : null;
  const stopSignal = io.untilStopSignal();
  const server = await startServer({ dataDir, host, port, tls });
  io.stdout(`${PROGRAM} listening on ${server.url}`);
  if (tls === null && !isLoopbackAddress(host)) {
    io.stderr(`${PROGRAM}: warning: plain HTTP on ${host}: agents refuse http:// to another machine (unless their config sets allowInsecureHttp, labs only) and administrators can log in only from this machine; give --tls-cert and --tls-key`);
  }
  io.stdout(`data directory ${dataDir} (admin token: ${server.adminTokenFile})`);
  await stopSignal;
  // A request that never finishes must not keep a service manager waiting for ever.
  const giveUp = setTimeout(() => {
    io.stderr(`${PROGRAM}: did not stop within ${SHUTDOWN_GRACE_MS / 1000} s`);
    process.exit(EXIT_FAILURE);
  }, SHUTDOWN_GRACE_MS);
  giveUp.unref();
  await server.close();
  clearTimeout(giveUp);
  return EXIT_OK;
}

function runTlsPin(values: Values, io: CliIo): Promise<number> {
  const file = stringValue(values, 'cert');
  if (file === undefined || file === '') throw new UsageError('missing --cert FILE');
  for (const pin of tlsPins(file)) io.stdout(pin);
  return Promise.resolve(EXIT_OK);
}

async function runEnrollmentToken(values: Values, io: CliIo): Promise<number> {
  const dataDir = requireData(values);
  const revoke = stringValue(values, 'revoke');
  const list = values.list === true;
  const creating = values['ttl-hours'] !== undefined || values.uses !== undefined;
  if ((list && revoke !== undefined) || ((list || revoke !== undefined) && creating)) {
    throw new UsageError('give at most one of --list, --revoke ID, or a new token\'s --ttl-hours/--uses');
  }
  if (revoke !== undefined && values.json === true) throw new UsageError('--json does not go with --revoke');
  if (revoke !== undefined && !EnrollmentTokenIdSchema.safeParse(revoke).success) {
    throw new UsageError(`--revoke ${JSON.stringify(printable(revoke))} is not a token id (enr_ followed by 24 hex digits; see --list)`);
  }
  const ttlHours = parseTtlHours(stringValue(values, 'ttl-hours'));
  const uses = parseUses(stringValue(values, 'uses'));
  const store = SqliteStore.open(dataDir, { create: false });
  try {
    const now = (io.clock ?? systemClock)();
    if (list) {
      const tokens = await store.listEnrollmentTokens();
      if (values.json === true) io.stdout(JSON.stringify({ tokens }, null, 2));
      else for (const line of enrollmentTokenTable(tokens, now)) io.stdout(line);
      return EXIT_OK;
    }
    if (revoke !== undefined) {
      const revoked = await store.revokeEnrollmentToken(revoke, now.toISOString());
      if (revoked === null) throw new CommandError(`no enrolment token ${revoke}`);
      await recordAdminAction(store, now, 'cli', 'enrollment-token.revoked', {}, { tokenId: revoked.id, enrolledDevices: revoked.enrolledDevices });
      io.stdout(`revoked ${revoked.id} (${revoked.enrolledDevices} terminal(s) enrolled with it)`);
      return EXIT_OK;
    }
    const issued = await createEnrollmentToken(store, { ttlHours, uses, now, createdBy: 'cli' });
    await recordAdminAction(store, now, 'cli', 'enrollment-token.created', {}, { tokenId: issued.id, uses: issued.uses, expiresAt: issued.expiresAt });
    io.stdout(values.json === true ? JSON.stringify(issued) : issued.token);
  } finally {
    await store.close();
  }
  return EXIT_OK;
}

const TOKEN_COLUMNS = ['ID', 'CREATED', 'EXPIRES', 'USED', 'LEFT', 'TERMINALS', 'STATE'];

/** Tab-separated lines of `enrollment-token --list`; STATE is active, used-up, expired or revoked at `now`. */
export function enrollmentTokenTable(tokens: readonly EnrollmentTokenSummary[], now: Date): string[] {
  const state = (token: EnrollmentTokenSummary): string => {
    if (token.revokedAt !== null) return 'revoked';
    if (token.expiresAt <= now.toISOString()) return 'expired';
    return token.usesLeft === 0 ? 'used-up' : 'active';
  };
  const rows = tokens.map((token) => [
    token.id,
    token.createdAt,
    token.expiresAt,
    `${token.maxUses - token.usesLeft}/${token.maxUses}`,
    String(token.usesLeft),
    String(token.enrolledDevices),
    state(token),
  ]);
  return [TOKEN_COLUMNS, ...rows].map((cells) => cells.join('\t'));
}

async function runEvents(values: Values, io: CliIo): Promise<number> {
  const dataDir = requireData(values);
  const deviceId = stringValue(values, 'device');
  if (deviceId === undefined) throw new CommandError('missing --device ID');
  if (!DeviceIdSchema.safeParse(deviceId).success) throw new UsageError(`--device ${JSON.stringify(deviceId)} is not a device id`);
  const count = values.count === true;
  const verify = values.verify === true;
  if (count === verify) throw new UsageError('give exactly one of --count and --verify');

  const store = SqliteStore.open(dataDir, { create: false });
  try {
    if ((await store.chainHead(deviceId)) === null) throw new CommandError(`no device ${deviceId}`);
    if (count) {
      io.stdout(String(await store.countEvents(deviceId)));
      return EXIT_OK;
    }
    const report = await verifyStoredChain(store, deviceId, sha256Hex);
    if (report === null) throw new CommandError(`no device ${deviceId}`);
    if (report.verified) {
      io.stdout(`verified ${report.count}`);
      return EXIT_OK;
    }
    io.stdout(`broken at seq ${report.firstBadSeq ?? '?'}: ${report.reason ?? 'unknown reason'}`);
    return EXIT_FAILURE;
  } finally {
    await store.close();
  }
}

async function runDevices(values: Values, io: CliIo): Promise<number> {
  const dataDir = requireData(values);
  const store = SqliteStore.open(dataDir, { create: false });
  try {
    const devices = await store.listDevices();
    if (values.json === true) io.stdout(JSON.stringify({ devices }, null, 2));
    else for (const line of deviceTable(devices)) io.stdout(line);
  } finally {
    await store.close();
  }
  return EXIT_OK;
}

/** Largest policy file `policy set` reads: the API's body limit. */
const MAX_POLICY_FILE_BYTES = 4 * 1024 * 1024;

async function runPolicySet(values: Values, io: CliIo, positionals: readonly string[]): Promise<number> {
  const dataDir = requireData(values);
  const tier = requireTier(values);
  const file = positionals[0] ?? '';
  const document = readPolicyFile(file);
  // The database first: a mistyped --data is an error, not a new data directory with a new key.
  const store = SqliteStore.open(dataDir, { create: false });
  try {
    const key = loadOrCreatePolicyKey(dataDir);
    const result = await publishPolicy(store, key, tier, document, (io.clock ?? systemClock)());
    if (!result.ok) {
      switch (result.error.code) {
        case 'invalid-policy':
          throw new CommandError(`${file}: ${printable(result.error.message)}`);
        case 'conflict':
          throw new CommandError(result.error.message);
        default:
          return assertNever(result.error.code, 'publish error');
      }
    }
    io.stdout(`tier ${tier} version ${result.value.version}`);
  } finally {
    await store.close();
  }
  return EXIT_OK;
}

async function runPolicyShow(values: Values, io: CliIo): Promise<number> {
  const dataDir = requireData(values);
  const tier = requireTier(values);
  const store = SqliteStore.open(dataDir, { create: false });
  try {
    const current = await store.currentPolicy(tier);
    if (current === null) throw new CommandError(`no policy published for tier ${tier}`);
    io.stdout(JSON.stringify(policyDocument(current), null, 2));
  } finally {
    await store.close();
  }
  return EXIT_OK;
}

async function runCreateAdmin(values: Values, io: CliIo): Promise<number> {
  const dataDir = requireData(values);
  const user = stringValue(values, 'user');
  if (user === undefined) throw new UsageError('missing --user NAME');
  if (!AdminNameSchema.safeParse(user).success) throw new UsageError(`--user ${JSON.stringify(printable(user))} is not an account name (letters, digits, . _ @ -; at most 64)`);
  const roleText = stringValue(values, 'role') ?? 'admin';
  const role = AdminRoleSchema.safeParse(roleText);
  if (!role.success) throw new UsageError(`--role ${JSON.stringify(printable(roleText))} is not one of ${ADMIN_ROLES.join(', ')}`);
  // The database first: a mistyped --data is an error, not a new data directory with a new key.
  const store = SqliteStore.open(dataDir, { create: false });
  try {
    const created = await addAdminAccount(store, dataDir, { user, role: role.data, now: (io.clock ?? systemClock)() });
    if (!created.ok) throw new CommandError(created.error.message);
    for (const line of createdAdminLines(created.value)) io.stdout(line);
  } finally {
    await store.close();
  }
  return EXIT_OK;
}

/** `create-admin`'s work: the account (data key created if missing) and its `account.created` row (actor `cli`). */
async function addAdminAccount(
  store: SqliteStore,
  dataDir: string,
  request: { readonly user: string; readonly role: AdminRole; readonly now: Date; readonly scrypt?: ScryptParams },
): Promise<Result<CreatedAdmin, 'exists'>> {
  const dataKey = loadOrCreateDataKey(dataDir);
  const created = await createAdminAccount({ store, dataKey }, request);
  if (created.ok) await recordAdminAction(store, request.now, 'cli', 'account.created', {}, { account: request.user, role: request.role });
  return created;
}

/** What `create-admin` prints, once, about a new account (stdout only: never logged). */
export function createdAdminLines(account: CreatedAdmin): string[] {
  return [
    `created ${account.role} account ${account.user}`,
    `initial password: ${account.initialPassword}`,
    `TOTP secret (base32): ${account.totpSecret}`,
    `otpauth URI: ${account.totpUri}`,
    'Shown once: add the secret to an authenticator app now; the password must be changed at the first login.',
  ];
}

/** The account `npm start` creates in an empty data directory. */
export const FIRST_ADMIN_USER = 'admin';

/**
 * The first administrator (`npm start`): when the database in `dataDir` holds no administrator
 * account, creates `user` (role admin) exactly as `create-admin` does and returns it — its password
 * and TOTP secret exist only in that answer; null when an account exists already (then nothing is
 * created, and there is nothing to print). The database must exist (the server started once).
 */
export async function createFirstAdmin(
  dataDir: string,
  now: Date,
  options: { readonly user?: string; readonly scrypt?: ScryptParams } = {},
): Promise<CreatedAdmin | null> {
  const store = SqliteStore.open(dataDir, { create: false });
  try {
    if ((await store.listAdminAccounts()).length > 0) return null;
    const created = await addAdminAccount(store, dataDir, { user: options.user ?? FIRST_ADMIN_USER, role: 'admin', now, scrypt: options.scrypt });
    // Another process created that name between the check and here: an account exists.
    return created.ok ? created.value : null;
  } finally {
    await store.close();
  }
}

function requireTier(values: Values): Tier {
  const tier = stringValue(values, 'tier');
  if (tier === undefined) throw new UsageError(`missing --tier (${TIERS.join(', ')})`);
  if (!isTier(tier)) throw new UsageError(`--tier ${JSON.stringify(tier)} is not one of ${TIERS.join(', ')}`);
  return tier;
}

function readPolicyFile(file: string): unknown {
  let text: string;
  try {
    if (fs.statSync(file).size > MAX_POLICY_FILE_BYTES) throw new CommandError(`${file}: larger than ${MAX_POLICY_FILE_BYTES} bytes`);
    text = fs.readFileSync(file, 'utf8');
  } catch (error) {
    if (error instanceof CommandError) throw error;
    throw new CommandError(`cannot read ${file}: ${(error as Error).message}`);
  }
  const parsed = parseUntrustedJson(text);
  if (!parsed.ok) throw new CommandError(`${file}: ${parsed.error.message}`);
  return parsed.value;
}

const DEVICE_COLUMNS = ['DEVICE', 'HOSTNAME', 'OS', 'AGENT', 'LAST SEEN', 'ENFORCEMENT', 'EVENTS', 'TAMPER'];

/** Tab-separated lines. Hostnames and versions come from terminals (attacker-controlled): control characters are escaped so they cannot drive the operator's terminal. */
export function deviceTable(devices: readonly DeviceSummary[]): string[] {
  const rows = devices.map((device) =>
    [
      device.deviceId,
      device.hostname,
      device.os,
      device.agentVersion,
      device.lastSeenAt ?? 'never',
      device.enforcement ?? '-',
      String(device.eventCount),
      String(device.tamperCount),
    ].map(printable),
  );
  return [DEVICE_COLUMNS, ...rows].map((cells) => cells.join('\t'));
}

/** Escapes C0/C1 control characters, DEL and tabs as `\u{…}`. */
export function printable(text: string): string {
  // eslint-disable-next-line no-control-regex -- matching control characters is the point
  return text.replace(/[\u0000-\u001f\u007f-\u009f]/g, (char) => `\\u{${char.charCodeAt(0).toString(16)}}`);
}

/** Whether a listen address only serves this machine. */
function isLoopbackAddress(host: string): boolean {
  return host === 'localhost' || host === '::1' || host === '[::1]' || host.startsWith('127.');
}

function requireData(values: Values): string {
  const dataDir = stringValue(values, 'data');
  if (dataDir === undefined || dataDir === '') throw new CommandError('missing --data DIR');
  return dataDir;
}

function stringValue(values: Values, name: string): string | undefined {
  const value = values[name];
  return typeof value === 'string' ? value : undefined;
}

function parsePort(text: string | undefined): number {
  if (text === undefined) return DEFAULT_PORT;
  const port = /^\d{1,5}$/.test(text) ? Number(text) : Number.NaN;
  if (!(port >= 0 && port <= 65535)) throw new UsageError(`--port ${JSON.stringify(text)} is not a port number (0-65535)`);
  return port;
}

function parseUses(text: string | undefined): number {
  if (text === undefined) return DEFAULT_TOKEN_USES;
  const uses = /^\d{1,6}$/.test(text) ? Number(text) : Number.NaN;
  if (!(uses >= 1 && uses <= MAX_TOKEN_USES)) throw new UsageError(`--uses ${JSON.stringify(text)} must be a whole number from 1 to ${MAX_TOKEN_USES}`);
  return uses;
}

function parseTtlHours(text: string | undefined): number {
  if (text === undefined) return DEFAULT_TOKEN_TTL_HOURS;
  const hours = /^\d+(\.\d+)?$/.test(text) ? Number(text) : Number.NaN;
  if (!(hours > 0 && hours <= MAX_TOKEN_TTL_HOURS)) {
    throw new UsageError(`--ttl-hours ${JSON.stringify(text)} must be a number of hours above 0 and at most ${MAX_TOKEN_TTL_HOURS}`);
  }
  return hours;
}
