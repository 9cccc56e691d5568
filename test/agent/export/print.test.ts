import fs from 'node:fs/promises';
import path from 'node:path';
import winston from 'winston';
import { afterEach, describe, expect, it } from 'vitest';
import { parseCupsTime, parseLpstatDestinations, parseLpstatJobs, parsePageLog, parsePrintServiceEvents } from '../../../agent/export/print-jobs.js';
import { CupsPrintSource, printEventsScript, WindowsPrintSource } from '../../../agent/export/print-sources.js';
import { loadPrintCursor, PrintWatcher, type PrintMode } from '../../../agent/export/print-watcher.js';
import { Journal } from '../../../agent/journal/journal.js';
import { FakeCommandRunner } from '../../fakes/fake-command-runner.js';
import { useTempDirs } from '../../helpers/temp-dir.js';

const tempDir = useTempDirs();
const silent = winston.createLogger({ silent: true });
const journals: Journal[] = [];
afterEach(async () => {
  for (const journal of journals.splice(0)) await journal.close();
});

const fixture = (name: string): Promise<string> => fs.readFile(path.resolve(import.meta.dirname, '../../fixtures/export', name), 'utf8');
const ok = (stdout: string) => ({ code: 0, stdout, stderr: '' });
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- journal data is free-form JSON
type LooseEntry = { type: string; data: Record<string, any> };

describe('print job parsers', () => {
  it('reads CUPS page_log total lines: user, printer, document with spaces, pages, time (JST → UTC)', async () => {
    const jobs = parsePageLog(await fixture('page_log'));
    expect(jobs).toEqual([
      { jobId: '41', printer: 'Office_MFP', user: 'yamada', document: '住民票写し.pdf', pages: 2, time: '2026-11-24T23:59:12.000Z', sizeBytes: null, host: 'localhost', source: 'cups-page_log' },
      { jobId: '42', printer: 'Office_MFP', user: 'suzuki', document: '令和8年度 予算要求資料 (最終).xlsx', pages: 14, time: '2026-11-25T00:03:45.000Z', sizeBytes: null, host: '10.20.1.15', source: 'cups-page_log' },
      { jobId: '43', printer: 'Color-Printer_2F', user: 'tanaka', document: null, pages: 1, time: '2026-11-25T00:10:00.000Z', sizeBytes: null, host: 'localhost', source: 'cups-page_log' },
    ]);
    expect(parseCupsTime('25/Nov/2026:09:00:00 -0130')).toBe('2026-11-25T10:30:00.000Z');
    expect(parseCupsTime('2026-11-25 09:00')).toBeNull();
  });

  it('reads lpstat job lists (printer names with dashes) and destinations', async () => {
    expect(parseLpstatJobs(await fixture('lpstat-completed.txt')).map((job) => [job.printer, job.jobId, job.user, job.sizeBytes])).toEqual([
      ['Office_MFP', '41', 'yamada', 20480],
      ['Office_MFP', '42', 'suzuki', 512000],
      ['Color-Printer_2F', '43', 'tanaka', 1024],
    ]);
    expect(parseLpstatDestinations(await fixture('lpstat-e.txt'))).toEqual(['Office_MFP', 'Color-Printer_2F']);
  });

  it('reads PrintService/Operational event 307 (document printed) from Get-WinEvent JSON', async () => {
    const events = parsePrintServiceEvents(await fixture('print-service-307.json'));
    expect(events.map((event) => [event.recordId, event.job.user, event.job.printer, event.job.document, event.job.pages, event.job.sizeBytes, event.job.time])).toEqual([
      [1201, 'YAMADA', 'Office_MFP', '住民税課税証明書_山田.pdf', 3, 524288, '2026-11-25T00:03:45.123Z'],
      [1202, 'SUZUKI', 'Color-Printer_2F', 'Microsoft Word - 議事録.docx', 12, 1048576, '2026-11-25T00:10:00.000Z'],
    ]);
    expect(parsePrintServiceEvents('')).toEqual([]);
  });
});

async function cupsRig(options: { pageLog?: string | null; mode?: PrintMode; commands?: FakeCommandRunner } = {}) {
  const rootDir = await tempDir();
  const stateDir = await tempDir();
  const logFile = path.join(rootDir, 'var/log/cups/page_log');
  if (options.pageLog !== null) {
    await fs.mkdir(path.dirname(logFile), { recursive: true });
    await fs.writeFile(logFile, options.pageLog ?? '');
  }
  const commands = options.commands ?? new FakeCommandRunner();
  const { journal } = await Journal.open(path.join(stateDir, 'journal.jsonl'));
  journals.push(journal);
  let mode: PrintMode = options.mode ?? 'log';
  const stateFile = path.join(stateDir, 'print-log.json');
  const make = async () =>
    new PrintWatcher({
      source: new CupsPrintSource({ rootDir, commands, cursor: await loadPrintCursor(stateFile) }),
      journal,
      logger: silent,
      mode: () => ({ mode, audit: false }),
      stateFile,
    });
  const entries = async (): Promise<LooseEntry[]> => ((await journal.read(1, 1000)) as LooseEntry[]).filter((entry) => entry.type.startsWith('export.'));
  return { logFile, commands, make, entries, setMode: (next: PrintMode) => (mode = next), stateFile };
}

describe('printing on Linux (CUPS page_log under a temp root, lpstat/cupsreject/cancel at the command boundary)', () => {
  it('journals every job printed after the agent started (not the history before), and resumes after a restart', async () => {
    const rig = await cupsRig({ pageLog: 'Old_Printer olduser 1 [01/Apr/2026:09:00:00 +0900] total 5 - localhost old.pdf A4 one-sided\n' });
    const watcher = await rig.make();
    await watcher.poll();
    expect(await rig.entries()).toEqual([]);
    await fs.appendFile(rig.logFile, await fixture('page_log'));
    await watcher.poll();
    const printed = await rig.entries();
    expect(printed.map((entry) => [entry.type, entry.data.user, entry.data.printer, entry.data.document, entry.data.pages])).toEqual([
      ['export.printed', 'yamada', 'Office_MFP', '住民票写し.pdf', 2],
      ['export.printed', 'suzuki', 'Office_MFP', '令和8年度 予算要求資料 (最終).xlsx', 14],
      ['export.printed', 'tanaka', 'Color-Printer_2F', null, 1],
    ]);
    expect(printed[0]?.data).toMatchObject({ channel: 'print', mode: 'log', time: '2026-11-24T23:59:12.000Z', source: 'cups-page_log' });
    await watcher.dispose();

    // Printed while the agent was stopped: journaled by the next run, once.
    await fs.appendFile(rig.logFile, 'Office_MFP sato 44 [25/Nov/2026:10:00:00 +0900] total 1 - localhost memo.txt A4 one-sided\n');
    const again = await rig.make();
    await again.poll();
    await again.poll();
    expect((await rig.entries()).map((entry) => entry.data.jobId)).toEqual(['41', '42', '43', '44']);
    await again.dispose();
  });

  it('reads only whole lines and starts over on a rotated page_log', async () => {
    const rig = await cupsRig({ pageLog: '' });
    const watcher = await rig.make();
    await watcher.poll();
    await fs.appendFile(rig.logFile, 'Office_MFP yamada 50 [25/Nov/2026:11:00:00 +0900] total 3 - localhost half');
    await watcher.poll();
    expect(await rig.entries()).toEqual([]);
    await fs.appendFile(rig.logFile, '.pdf A4 one-sided\n');
    await watcher.poll();
    expect((await rig.entries()).map((entry) => entry.data.document)).toEqual(['half.pdf']);
    await fs.rename(rig.logFile, `${rig.logFile}.O`);
    await fs.writeFile(rig.logFile, 'Office_MFP yamada 51 [25/Nov/2026:11:05:00 +0900] total 1 - localhost after-rotation.pdf A4 one-sided\n');
    await watcher.poll();
    expect((await rig.entries()).map((entry) => entry.data.jobId)).toEqual(['50', '51']);
    await watcher.dispose();
  });

  it('without page_log falls back to lpstat -W completed -o (no document name, no pages)', async () => {
    // Newest rule first: the first call sees no jobs (the baseline), later calls see three.
    const commands = new FakeCommandRunner().on(['-W', 'completed', '-o'], ok(await fixture('lpstat-completed.txt'))).on(['-W', 'completed', '-o'], ok(''), 1);
    const rig = await cupsRig({ pageLog: null, commands });
    const watcher = await rig.make();
    await watcher.poll();
    await watcher.poll();
    expect((await rig.entries()).map((entry) => [entry.data.jobId, entry.data.user, entry.data.document, entry.data.source])).toEqual([
      ['41', 'yamada', null, 'cups-lpstat'],
      ['42', 'suzuki', null, 'cups-lpstat'],
      ['43', 'tanaka', null, 'cups-lpstat'],
    ]);
    await watcher.dispose();
  });

  it('takes the first page_log CUPS creates from its start, skipping jobs lpstat already reported', async () => {
    const commands = new FakeCommandRunner().on(['-W', 'completed', '-o'], ok('Office_MFP-40           yamada          20480   Wed 25 Nov 2026 08:50:00 AM JST\n'));
    const rig = await cupsRig({ pageLog: null, commands });
    const watcher = await rig.make();
    await watcher.poll();
    await fs.mkdir(path.dirname(rig.logFile), { recursive: true });
    await fs.writeFile(rig.logFile, `Office_MFP yamada 40 [25/Nov/2026:08:50:00 +0900] total 1 - localhost old.pdf A4 one-sided\n${await fixture('page_log')}`);
    await watcher.poll();
    expect((await rig.entries()).map((entry) => [entry.data.jobId, entry.data.source])).toEqual([
      ['41', 'cups-page_log'],
      ['42', 'cups-page_log'],
      ['43', 'cups-page_log'],
    ]);
    await watcher.dispose();
  });

  it('in block mode refuses jobs on every queue, cancels waiting ones (journaled), and undoes only its own blocking', async () => {
    const commands = new FakeCommandRunner()
      .on(['-e'], ok(await fixture('lpstat-e.txt')))
      .on(['-W', 'not-completed', '-o'], ok(''))
      .on(['-W', 'not-completed', '-o'], ok(await fixture('lpstat-not-completed.txt')), 1);
    const rig = await cupsRig({ pageLog: '', mode: 'block', commands });
    const watcher = await rig.make();
    await watcher.poll();
    expect(commands.calls.map((call) => [call.file, ...call.args])).toEqual([
      ['lpstat', '-e'],
      ['cupsreject', '-r', 'Sekimori: printing is blocked by the security policy', 'Office_MFP'],
      ['cupsreject', '-r', 'Sekimori: printing is blocked by the security policy', 'Color-Printer_2F'],
      ['lpstat', '-W', 'not-completed', '-o'],
      ['cancel', '44'],
    ]);
    const blocked = await rig.entries();
    expect(blocked.map((entry) => [entry.type, entry.data.channel, entry.data.job?.jobId ?? null, entry.data.cancelledJobs ?? null])).toEqual([
      ['export.blocked', 'print', null, 1],
      ['export.blocked', 'print', '44', null],
    ]);
    expect(JSON.parse(await fs.readFile(rig.stateFile, 'utf8'))).toMatchObject({ blockedByAgent: ['Office_MFP', 'Color-Printer_2F'] });

    commands.clear();
    await watcher.poll();
    expect(commands.calls.map((call) => call.file)).toEqual(['lpstat', 'lpstat']);

    rig.setMode('log');
    commands.clear();
    await watcher.poll();
    expect(commands.calls.map((call) => [call.file, ...call.args])).toEqual([
      ['cupsaccept', 'Office_MFP'],
      ['cupsaccept', 'Color-Printer_2F'],
    ]);
    expect((await rig.entries()).at(-1)).toMatchObject({ type: 'export.allowed', data: { channel: 'print', decision: 'allow', enforced: { ok: true } } });
    await watcher.dispose();
  });
});

describe('printing on Windows (PrintService/Operational and sc.exe at the command boundary)', () => {
  it('enables the log, sets a baseline, then journals documents printed since, once each', async () => {
    const events = await fixture('print-service-307.json');
    const commands = new FakeCommandRunner().on(() => true, ok(events));
    let now = Date.parse('2026-11-25T00:00:00Z');
    const source = new WindowsPrintSource({ commands, cursor: null, nowMs: () => now });
    expect(await source.completed()).toEqual({ ok: true, jobs: [], available: true });
    expect(commands.calls[0]).toMatchObject({ file: 'wevtutil.exe', args: ['sl', 'Microsoft-Windows-PrintService/Operational', '/e:true'] });
    now += 60_000;
    const first = await source.completed();
    expect(first.ok && first.jobs.map((job) => [job.user, job.document, job.pages])).toEqual([
      ['YAMADA', '住民税課税証明書_山田.pdf', 3],
      ['SUZUKI', 'Microsoft Word - 議事録.docx', 12],
    ]);
    expect(commands.calls[1]).toMatchObject({ file: 'powershell.exe', args: ['-NoProfile', '-NonInteractive', '-Command', printEventsScript('2026-11-25T00:00:00.000Z')] });
    const second = await source.completed();
    expect(second.ok && second.jobs).toEqual([]);
    expect(source.cursor).toMatchObject({ lastRecordId: 1202, lastTime: '2026-11-25T00:10:00.000Z' });
  });

  it('blocks by stopping and disabling the spooler, and restarts it only if it stopped it', async () => {
    const commands = new FakeCommandRunner().on(['stop'], { code: 1062, stdout: 'The service has not been started.', stderr: '' });
    const source = new WindowsPrintSource({ commands, cursor: null, nowMs: () => 0 });
    expect(await source.enforce(false)).toMatchObject({ ok: true, actions: [] });
    expect(await source.enforce(true)).toMatchObject({ ok: true, actions: ['sc.exe config Spooler start= disabled', 'sc.exe stop Spooler'] });
    expect(await source.enforce(true)).toMatchObject({ ok: true, actions: [] });
    expect(await source.enforce(false)).toMatchObject({ ok: true, actions: ['sc.exe config Spooler start= auto', 'sc.exe start Spooler'] });
    expect(commands.calls.map((call) => call.args)).toEqual([
      ['config', 'Spooler', 'start=', 'disabled'],
      ['stop', 'Spooler'],
      ['config', 'Spooler', 'start=', 'auto'],
      ['start', 'Spooler'],
    ]);
  });

  it('refuses to build the event query from anything but an ISO UTC time', () => {
    expect(() => printEventsScript("2026-11-25'; Remove-Item C:\\ -Recurse; '")).toThrow(RangeError);
  });
});
