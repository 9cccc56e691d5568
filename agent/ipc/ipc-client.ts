import net from 'node:net';
import { IpcResponseSchema, type IpcRequest, type IpcResponse } from '../../shared/ipc.js';

/** No agent is listening at the endpoint (not running, or a stale socket file). */
export class AgentNotRunning extends Error {}

/**
 * Sends one request to the running agent and returns its answer. Rejects with `AgentNotRunning`
 * when nothing listens, and with an Error for a broken or missing answer.
 */
export function callAgent(endpoint: string, request: IpcRequest, timeoutMs = 10_000): Promise<IpcResponse> {
  return new Promise((resolve, reject) => {
    const socket = net.createConnection(endpoint);
    socket.setEncoding('utf8');
    let buffer = '';
    let settled = false;
    const settle = (fn: () => void): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      fn();
    };
    const timer = setTimeout(() => settle(() => reject(new Error('the agent did not answer in time'))), timeoutMs);
    socket.on('connect', () => socket.write(JSON.stringify(request) + '\n'));
    socket.on('data', (chunk: string) => {
      buffer += chunk;
      const newline = buffer.indexOf('\n');
      if (newline === -1) return;
      let raw: unknown;
      try {
        raw = JSON.parse(buffer.slice(0, newline));
      } catch {
        settle(() => reject(new Error('the agent answered with something that is not JSON')));
        return;
      }
      const parsed = IpcResponseSchema.safeParse(raw);
      settle(() => (parsed.success ? resolve(parsed.data) : reject(new Error('the agent answered with an unexpected message'))));
    });
    socket.on('error', (error: NodeJS.ErrnoException) => {
      const notRunning = error.code === 'ENOENT' || error.code === 'ECONNREFUSED';
      settle(() => reject(notRunning ? new AgentNotRunning('the agent is not running') : error));
    });
    socket.on('close', () => settle(() => reject(new Error('the agent closed the connection without answering'))));
  });
}
