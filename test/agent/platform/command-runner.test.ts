import fs from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { NodeCommandRunner } from '../../../agent/platform/command-runner.js';
import { useTempDirs } from '../../helpers/temp-dir.js';

const tempDir = useTempDirs();
const runner = new NodeCommandRunner();
/** Prints its argv as JSON: proves what the program received, element by element. */
const PRINT_ARGV = 'process.stdout.write(JSON.stringify(process.argv.slice(1)))';

describe('NodeCommandRunner', () => {
  it('runs a real program and returns its exit code and output', async () => {
    const result = await runner.run('/bin/echo', ['関守', 'ok']);
    expect(result).toEqual({ code: 0, stdout: '関守 ok\n', stderr: '' });
  });

  it('passes shell metacharacters through as one literal argument each, never to a shell', async () => {
    const dir = await tempDir();
    const marker = path.join(dir, 'pwned');
    const hostile = [`$(touch ${marker})`, `; touch ${marker}`, `\`touch ${marker}\``, `" && touch ${marker} && "`, `USB\\VID_0930&PID_6545\\A1 B2|C3>D4`, '%PATH%', '*'];
    const result = await runner.run(process.execPath, ['-e', PRINT_ARGV, ...hostile]);
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toEqual(hostile);
    await expect(fs.access(marker)).rejects.toThrow();
  });

  it('reports a non-zero exit through the code alone', async () => {
    const result = await runner.run(process.execPath, ['-e', 'process.stderr.write("nope"); process.exit(3)']);
    expect(result).toEqual({ code: 3, stdout: '', stderr: 'nope' });
  });

  it('kills a command that outlives its timeout and says so instead of throwing', async () => {
    const started = Date.now();
    const result = await runner.run(process.execPath, ['-e', 'setTimeout(() => {}, 20000)'], { timeoutMs: 300 });
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(result.code).toBeNull();
    expect(result.error).toMatch(/timed out after 300 ms/);
  });

  it('resolves with an error for a program that does not exist', async () => {
    const result = await runner.run('/nonexistent/sekimori-no-such-program', ['x']);
    expect(result.code).toBeNull();
    expect(result.error).toMatch(/ENOENT/);
  });

  it('resolves with an error for an argument no OS can pass (NUL byte)', async () => {
    const result = await runner.run('/bin/echo', ['a\u0000b']);
    expect(result.code).toBeNull();
    expect(result.error).toBeDefined();
  });

  it('writes input to stdin and closes it', async () => {
    const result = await runner.run(process.execPath, ['-e', 'process.stdin.pipe(process.stdout)'], { input: 'from stdin' });
    expect(result).toEqual({ code: 0, stdout: 'from stdin', stderr: '' });
  });

  it('bounds the output it keeps', async () => {
    const small = new NodeCommandRunner({ maxOutputBytes: 1024 });
    const result = await small.run(process.execPath, ['-e', 'process.stdout.write("x".repeat(100000))']);
    expect(result.error).toMatch(/exceeded 1024 bytes/);
    expect(result.stdout.length).toBeLessThanOrEqual(1024);
  });
});
