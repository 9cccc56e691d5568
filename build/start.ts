import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { firstAdminNotice } from './first-admin.js';

/**
 * `npm start`: the whole product on one machine for a developer or an evaluator. Starts the server
 * with its embedded SQLite database, an agent enrolled to it, and the Electron app where its binary
 * exists; prints where to look (and, at the first start of a data directory, the first administrator's
 * credentials, once: build/first-admin.ts); Ctrl+C stops everything cleanly. Data lives in ./.sekimori/.
 */
const root = path.resolve(import.meta.dirname, '../..');
const dataRoot = path.resolve(process.env.SEKIMORI_HOME ?? path.join(root, '.sekimori'));
const serverData = path.join(dataRoot, 'server');
const agentState = path.join(dataRoot, 'agent');
const port = process.env.SEKIMORI_PORT ?? '8443';
const serverCli = path.join(root, 'dist/server/cli.js');
const agentCli = path.join(root, 'dist/agent/cli.js');

const children: ChildProcess[] = [];
let stopping = false;

function start(name: string, command: string, args: string[], onLine?: (line: string) => void, env: NodeJS.ProcessEnv = {}): ChildProcess {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  const relay = (stream: NodeJS.ReadableStream, sink: NodeJS.WriteStream): void => {
    let buffer = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      buffer += chunk;
      let newline: number;
      while ((newline = buffer.indexOf('\n')) !== -1) {
        const line = buffer.slice(0, newline);
        buffer = buffer.slice(newline + 1);
        sink.write(`[${name}] ${line}\n`);
        onLine?.(line);
      }
    });
  };
  relay(child.stdout, process.stdout);
  relay(child.stderr, process.stderr);
  child.on('exit', (code, signal) => {
    if (!stopping) {
      process.stderr.write(`[${name}] exited (${signal ?? code}); stopping everything\n`);
      void stopAll(1);
    }
  });
  children.push(child);
  return child;
}

async function stopAll(exitCode: number): Promise<void> {
  if (stopping) return;
  stopping = true;
  // Agent first, so it can journal its stop while the server still listens.
  for (const child of [...children].reverse()) {
    if (child.exitCode !== null || child.signalCode !== null) continue;
    child.kill('SIGTERM');
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        resolve();
      }, 10_000);
      child.once('exit', () => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
  process.exit(exitCode);
}

function electronBinary(): string | null {
  try {
    const require = createRequire(import.meta.url);
    const binary = require('electron') as unknown;
    return typeof binary === 'string' && fs.existsSync(binary) ? binary : null;
  } catch {
    return null;
  }
}

async function main(): Promise<void> {
  fs.mkdirSync(dataRoot, { recursive: true, mode: 0o700 });
  process.on('SIGINT', () => void stopAll(0));
  process.on('SIGTERM', () => void stopAll(0));

  const url = await new Promise<string>((resolve) => {
    start('server', process.execPath, [serverCli, 'start', '--data', serverData, '--port', port], (line) => {
      const match = line.match(/listening on (http:\/\/\S+)/);
      if (match) resolve(match[1]!);
    });
  });

  // The server has created its database: the first start of a data directory creates the first
  // administrator; its password and TOTP secret go to this terminal only (below), never to a log.
  const admin = await firstAdminNotice(serverData, url);

  const enrolled = fs.existsSync(path.join(agentState, 'credentials.json'));
  const agentArgs = ['run', '--state', agentState, '--server', url];
  if (!enrolled) {
    // The way IT deploys it: the token travels in the agent's config file (not on a command line
    // that `ps` shows), and the agent deletes it once spent.
    const token = execFileSync(process.execPath, [serverCli, 'enrollment-token', '--data', serverData], { encoding: 'utf8' }).trim();
    fs.mkdirSync(agentState, { recursive: true, mode: 0o700 });
    // The lock covers the developer's own session (a desktop without logind cannot name it).
    const config = { serverUrl: url, enrollToken: token, lock: { consoleUser: os.userInfo().username } };
    fs.writeFileSync(path.join(agentState, 'config.json'), JSON.stringify(config, null, 2) + '\n', { mode: 0o600 });
  }
  start('agent', process.execPath, [agentCli, ...agentArgs]);

  const electron = electronBinary();
  if (electron) {
    // Outside the installed service the agent's socket lives in its state directory.
    start('app', electron, [path.join(root, 'dist/main/main.js')], undefined, { SEKIMORI_AGENT_SOCKET: path.join(agentState, 'agent.sock') });
  } else {
    process.stdout.write('Electron binary not installed here (its download is blocked on this machine): running server + agent without the desktop app.\n');
  }

  process.stdout.write(
    [
      '',
      'Sekimori is running. Ctrl+C stops everything.',
      `  API:            ${url}/api/v1/health`,
      `  Devices (API):  ${url}/api/v1/admin/devices  (Authorization: Bearer <admin token>)`,
      `  Admin token:    ${path.join(serverData, 'admin-token')}`,
      `  Server data:    ${serverData}  (SQLite: sekimori.db)`,
      `  Agent state:    ${agentState}  (journal.jsonl; npx sekimori-agent status --state ${agentState})`,
      ...admin.lines,
      '',
    ].join('\n'),
  );
}

main().catch((error: unknown) => {
  process.stderr.write(`npm start failed: ${error instanceof Error ? error.message : String(error)}\n`);
  void stopAll(1);
});
