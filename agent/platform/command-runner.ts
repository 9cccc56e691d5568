import { execFile } from 'node:child_process';

/** What one finished (or failed-to-start) command produced. */
export interface CommandResult {
  /** Exit code; null when the process did not exit normally (killed by a signal, timed out, never started). */
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  /**
   * Set when the command could not be run to completion: not found, timed out, output over the
   * limit, killed. A non-zero exit alone is not an error here: callers judge `code`.
   */
  readonly error?: string;
}

export interface CommandOptions {
  /** Kill the command after this many milliseconds (default `DEFAULT_TIMEOUT_MS`). */
  readonly timeoutMs?: number;
  /** Written to the command's stdin, which is then closed. */
  readonly input?: string;
}

/**
 * The thin OS boundary every platform adapter runs programs through (`reg.exe`, `pnputil`,
 * `diskutil`, `blockdev`). One program and an argv array: no shell ever sees the arguments, so text
 * that came from a device (a serial inside a PnP instance id, a volume name) is always exactly one
 * argument and cannot inject a command. Contract:
 * - Never throws and never rejects for anything the OS does (missing program, timeout, non-zero
 *   exit): it resolves with `code`/`error` so the caller can journal the failure and fail closed.
 * - Output is decoded as UTF-8 and bounded.
 * Fakes: `test/fakes/fake-command-runner.ts`.
 */
export interface CommandRunner {
  run(file: string, args: readonly string[], options?: CommandOptions): Promise<CommandResult>;
}

/** Default time limit per command: long enough for `pnputil` to stop a device, short enough to keep reconcile moving. */
export const DEFAULT_TIMEOUT_MS = 30_000;
/** Per-stream output bound; larger output ends the command with an error (no adapter here reads more). */
export const MAX_OUTPUT_BYTES = 1024 * 1024;

/**
 * `CommandRunner` over `child_process.execFile` with `shell: false` (arguments go to the program
 * verbatim — on Windows, libuv quotes each one for `CommandLineToArgvW`), `windowsHide` (no console
 * window flashes on the user's desktop), a timeout that kills the child, and bounded output.
 */
export class NodeCommandRunner implements CommandRunner {
  constructor(private readonly defaults: { readonly timeoutMs?: number; readonly maxOutputBytes?: number } = {}) {}

  run(file: string, args: readonly string[], options: CommandOptions = {}): Promise<CommandResult> {
    const timeout = options.timeoutMs ?? this.defaults.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const maxBuffer = this.defaults.maxOutputBytes ?? MAX_OUTPUT_BYTES;
    return new Promise((resolve) => {
      let child: ReturnType<typeof execFile>;
      try {
        child = execFile(
          file,
          [...args],
          { shell: false, windowsHide: true, timeout, maxBuffer, encoding: 'utf8', killSignal: 'SIGKILL' },
          (error, stdout, stderr) => {
            if (!error) {
              resolve({ code: 0, stdout, stderr });
              return;
            }
            resolve({ code: exitCodeOf(error), stdout, stderr, ...describeFailure(error, timeout, maxBuffer) });
          },
        );
      } catch (error) {
        // execFile throws synchronously only for invalid arguments (e.g. a NUL byte in argv).
        resolve({ code: null, stdout: '', stderr: '', error: `could not start ${file}: ${messageOf(error)}` });
        return;
      }
      // A command that does not read stdin closes it early: that EPIPE is not our failure.
      child.stdin?.on('error', () => undefined);
      if (options.input !== undefined) child.stdin?.end(options.input);
      else child.stdin?.end();
    });
  }
}

type ExecError = Error & { code?: unknown; killed?: boolean; signal?: unknown };

function exitCodeOf(error: ExecError): number | null {
  return typeof error.code === 'number' ? error.code : null;
}

/** Only failures to run are errors; a plain non-zero exit is reported through `code` alone. */
function describeFailure(error: ExecError, timeoutMs: number, maxBuffer: number): { error?: string } {
  if (error.code === 'ERR_CHILD_PROCESS_STDIO_MAXBUFFER') return { error: `output exceeded ${maxBuffer} bytes` };
  if (typeof error.code === 'string') return { error: `${error.code}: ${error.message}` };
  if (error.killed && typeof error.signal === 'string') return { error: `timed out after ${timeoutMs} ms (${error.signal})` };
  if (typeof error.signal === 'string') return { error: `killed by ${error.signal}` };
  return {};
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
