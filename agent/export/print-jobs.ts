/**
 * Print jobs as the platforms record them, parsed into one shape for the journal
 * (`export.printed`, `export.blocked` with channel `print`). Pure parsers: every field is text
 * from the print system (document names come from users' files: journaled as data, shown escaped).
 */
export interface PrintJob {
  /** The print system's job id (CUPS job number, Windows spooler job id). */
  readonly jobId: string;
  readonly printer: string;
  readonly user: string;
  /** Document (job) name; null where the platform does not tell (CUPS `lpstat`). */
  readonly document: string | null;
  /** Pages (impressions) where the platform tells; null otherwise. */
  readonly pages: number | null;
  /** ISO 8601 when known; the platform's own text otherwise (`lpstat`). */
  readonly time: string | null;
  readonly sizeBytes: number | null;
  /** The originating host where the platform tells (network print servers). */
  readonly host: string | null;
  /** `cups-page_log`, `cups-lpstat`, `PrintService/307`. */
  readonly source: string;
}

const MONTHS: Readonly<Record<string, number>> = { Jan: 0, Feb: 1, Mar: 2, Apr: 3, May: 4, Jun: 5, Jul: 6, Aug: 7, Sep: 8, Oct: 9, Nov: 10, Dec: 11 };

/** CUPS log time `25/Nov/2026:09:00:00 +0900` as ISO 8601 (UTC); null when malformed. */
export function parseCupsTime(text: string): string | null {
  const match = /^(\d{2})\/([A-Z][a-z]{2})\/(\d{4}):(\d{2}):(\d{2}):(\d{2}) ([+-])(\d{2})(\d{2})$/.exec(text);
  if (!match) return null;
  const month = MONTHS[match[2] ?? ''];
  if (month === undefined) return null;
  const offsetMinutes = (match[7] === '-' ? -1 : 1) * (Number(match[8]) * 60 + Number(match[9]));
  const utc = Date.UTC(Number(match[3]), month, Number(match[1]), Number(match[4]), Number(match[5]), Number(match[6])) - offsetMinutes * 60_000;
  return new Date(utc).toISOString();
}

const PAGE_LOG_LINE = /^(\S+) (\S+) (\d+) \[([^\]]+)\] (\S+) (\d+) (\S+) (\S+)(?: (.*))?$/;

/**
 * Parses CUPS `page_log` lines in the default `PageLogFormat` of CUPS 2.x
 * (`%p %u %j %T %P %C %{job-billing} %{job-originating-host-name} %{job-name} %{media} %{sides}`):
 * one job per `total` line (`%P` = `total`, `%C` = the job's impressions). Per-page lines of older
 * formats are skipped. The job name may contain spaces: media and sides are the last two words.
 */
export function parsePageLog(text: string): PrintJob[] {
  const jobs: PrintJob[] = [];
  for (const line of text.split('\n')) {
    const match = PAGE_LOG_LINE.exec(line.trimEnd());
    if (!match || match[5] !== 'total') continue;
    const rest = (match[9] ?? '').split(' ');
    const document = rest.length >= 3 ? rest.slice(0, -2).join(' ') : rest.join(' ');
    const host = match[8] ?? '-';
    jobs.push({
      jobId: match[3] ?? '',
      printer: match[1] ?? '',
      user: match[2] ?? '',
      document: document === '' || document === '-' ? null : document,
      pages: Number(match[6]),
      time: parseCupsTime(match[4] ?? ''),
      sizeBytes: null,
      host: host === '-' ? null : host,
      source: 'cups-page_log',
    });
  }
  return jobs;
}

/**
 * Parses `lpstat -W completed -o` (or `not-completed`): `PRINTER-JOBID USER SIZE DATE…`. The
 * printer name may contain `-`: the job id is after the last one. No document name, no pages.
 */
export function parseLpstatJobs(text: string): PrintJob[] {
  const jobs: PrintJob[] = [];
  for (const line of text.split('\n')) {
    const match = /^(\S+)-(\d+)\s+(\S+)\s+(\d+)\s+(.*)$/.exec(line.trim());
    if (!match) continue;
    jobs.push({ jobId: match[2] ?? '', printer: match[1] ?? '', user: match[3] ?? '', document: null, pages: null, time: (match[5] ?? '').trim() || null, sizeBytes: Number(match[4]), host: null, source: 'cups-lpstat' });
  }
  return jobs;
}

/** Destinations from `lpstat -e` (one name a line). */
export function parseLpstatDestinations(text: string): string[] {
  return text
    .split('\n')
    .map((line) => line.trim())
    .filter((name) => /^[^\s/#]{1,127}$/.test(name));
}

/** One event of `PRINT_EVENTS_SCRIPT` (Windows): the record id and the job. */
export interface PrintEvent {
  readonly recordId: number;
  readonly job: PrintJob;
}

/**
 * Parses the PowerShell output for PrintService/Operational event 307 ("Document printed"):
 * `[{ RecordId, Time (ISO), Params: [job id, document, user, computer, printer, port, bytes, pages] }]`
 * (or one object when only one event matched).
 */
export function parsePrintServiceEvents(stdout: string): PrintEvent[] {
  const text = stdout.trim();
  if (text === '') return [];
  const json = JSON.parse(text) as unknown;
  const events: PrintEvent[] = [];
  for (const item of Array.isArray(json) ? json : [json]) {
    const record = (item ?? {}) as Record<string, unknown>;
    const params = Array.isArray(record.Params) ? record.Params.map((value) => (value === null || value === undefined ? '' : String(value))) : [];
    if (typeof record.RecordId !== 'number' || params.length < 8) continue;
    const number = (value: string | undefined): number | null => (value !== undefined && /^\d+$/.test(value) ? Number(value) : null);
    events.push({
      recordId: record.RecordId,
      job: {
        jobId: params[0] ?? '',
        document: params[1] || null,
        user: params[2] ?? '',
        host: params[3] || null,
        printer: params[4] ?? '',
        sizeBytes: number(params[6]),
        pages: number(params[7]),
        time: typeof record.Time === 'string' && !Number.isNaN(Date.parse(record.Time)) ? new Date(record.Time).toISOString() : null,
        source: 'PrintService/307',
      },
    });
  }
  return events;
}
