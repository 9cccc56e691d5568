import type { CommandOptions, CommandResult, CommandRunner } from '../../agent/platform/command-runner.js';

/** One recorded call: the program and its argv exactly as the adapter passed them. */
export interface RecordedCommand {
  readonly file: string;
  readonly args: readonly string[];
  readonly options: CommandOptions | undefined;
}

type Matcher = (file: string, args: readonly string[]) => boolean;
type Responder = CommandResult | ((file: string, args: readonly string[]) => CommandResult);

/** Success with no output: what an unscripted command returns. */
export const SUCCESS: CommandResult = { code: 0, stdout: '', stderr: '' };

/**
 * Fake of the thin OS boundary (`CommandRunner`): records every call and answers from a script.
 * Rules are tried newest first, so a test can override a default; unmatched calls succeed silently.
 * It never runs anything.
 */
export class FakeCommandRunner implements CommandRunner {
  readonly calls: RecordedCommand[] = [];
  private readonly rules: { matches: Matcher; respond: Responder; times: number }[] = [];

  run(file: string, args: readonly string[], options?: CommandOptions): Promise<CommandResult> {
    this.calls.push({ file, args: [...args], options });
    const rule = this.rules.find((candidate) => candidate.times > 0 && candidate.matches(file, args));
    if (!rule) return Promise.resolve(SUCCESS);
    rule.times -= 1;
    return Promise.resolve(typeof rule.respond === 'function' ? rule.respond(file, args) : rule.respond);
  }

  /** Answers calls whose argv starts with `prefix` (or that `prefix` matches) with `result`, `times` times (default always). */
  on(prefix: readonly string[] | Matcher, result: Responder, times = Number.POSITIVE_INFINITY): this {
    const matches: Matcher = typeof prefix === 'function' ? prefix : (_file, args) => prefix.every((part, i) => args[i] === part);
    this.rules.unshift({ matches, respond: result, times });
    return this;
  }

  /** The argv of every call so far (the program is checked separately where it matters). */
  argvs(): string[][] {
    return this.calls.map((call) => [...call.args]);
  }

  /** Calls whose argv starts with `prefix`. */
  callsTo(...prefix: string[]): RecordedCommand[] {
    return this.calls.filter((call) => prefix.every((part, i) => call.args[i] === part));
  }

  clear(): void {
    this.calls.length = 0;
  }
}
