import fs from 'node:fs/promises';
import crypto from 'node:crypto';
import { EMPTY_HEAD, checkLinkWithHash, type ChainBreak } from '../../shared/journal.js';

/**
 * Reads a journal file once, front to back, and says what it holds: how many entries, where each
 * line starts, the head of the chain, the first place the chain breaks, and whether the file ends
 * in a torn write.
 *
 * A torn tail is what a crash or power loss leaves after the last complete entry: a line with no
 * newline, or lines that are not JSON at all (ext4 may show zero-filled blocks). Those were never
 * acknowledged as written, so recovering means cutting them off. A complete, parseable entry whose
 * hash does not check is never "torn": that is tampering, and it is reported, not cut.
 */
export interface JournalScan {
  /** Entries (complete lines) before the torn tail, whether or not they chain correctly. */
  readonly count: number;
  /** Byte offset where each entry's line starts; `lineStarts[i]` is entry i (seq i + 1 when intact). */
  readonly lineStarts: number[];
  /** Byte length of the part of the file that is kept (everything before the torn tail). */
  readonly validBytes: number;
  /** Seq and hash of the last entry (chain continues from here). */
  readonly head: { seq: number; hash: string };
  /** First break in the chain, or null when every entry links. */
  readonly firstBreak: { seq: number; reason: ChainBreak | 'unparseable'; message: string } | null;
  /** Bytes after the last complete entry that a crash left behind, or null. */
  readonly tornTail: { offset: number; bytes: number } | null;
}

const NEWLINE = 0x0a;
const CHUNK = 4 * 1024 * 1024;
const LINE_START = Buffer.from('{"data":{');
const HASH_MEMBER = Buffer.from(',"hash":"');
/** `,"hash":"` + 64 hex + `"`: what is cut out of a line to get its hash input. */
const HASH_MEMBER_BYTES = HASH_MEMBER.length + 65;
/** Separators at fixed places after the data (hash and prev are 64 characters each). */
const PREV_MEMBER = '","prev":"';
const SEQ_MEMBER = '","seq":';
const HASH_AT = HASH_MEMBER.length;
const PREV_AT = HASH_AT + 64 + PREV_MEMBER.length;
const SEQ_AT = PREV_AT + 64 + SEQ_MEMBER.length;
const SEQ = /^[1-9][0-9]{0,15}$/;
const REST = /^,"time":"[0-9T:.Z-]{24}","type":"[a-zA-Z0-9.]{3,64}","tz":"[+-][0-9]{2}:[0-9]{2}"}$/;

/** Scans the journal at `path` (a missing file is an empty journal). */
export async function scanJournal(path: string): Promise<JournalScan> {
  let handle: fs.FileHandle;
  try {
    handle = await fs.open(path, 'r');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
      return { count: 0, lineStarts: [], validBytes: 0, head: { ...EMPTY_HEAD }, firstBreak: null, tornTail: null };
    }
    throw error;
  }
  try {
    const scanner = new LineScanner();
    const buffer = Buffer.allocUnsafe(CHUNK);
    let position = 0;
    for (;;) {
      const { bytesRead } = await handle.read(buffer, 0, CHUNK, position);
      if (bytesRead === 0) break;
      scanner.push(buffer.subarray(0, bytesRead), position);
      position += bytesRead;
    }
    return scanner.finish(position);
  } finally {
    await handle.close();
  }
}

/** Incremental line splitter + chain checker (chunks may split lines anywhere). */
class LineScanner {
  private carry: Buffer[] = [];
  private carryStart = 0;
  private head = { ...EMPTY_HEAD };
  private firstBreak: JournalScan['firstBreak'] = null;
  private readonly lineStarts: number[] = [];
  private scratch = Buffer.allocUnsafe(64 * 1024);
  /** Offsets of the current run of unparseable lines: a torn tail if nothing valid follows. */
  private badRun: number[] = [];
  private firstBadInRun: { seq: number; message: string } | null = null;

  push(chunk: Buffer, chunkOffset: number): void {
    let lineStart = 0;
    for (;;) {
      const nl = chunk.indexOf(NEWLINE, lineStart);
      if (nl === -1) break;
      const piece = chunk.subarray(lineStart, nl);
      if (this.carry.length > 0) {
        this.carry.push(piece);
        this.line(Buffer.concat(this.carry), this.carryStart);
        this.carry = [];
      } else {
        this.line(piece, chunkOffset + lineStart);
      }
      lineStart = nl + 1;
    }
    if (lineStart < chunk.length) {
      if (this.carry.length === 0) this.carryStart = chunkOffset + lineStart;
      // Copy: the read buffer is reused for the next chunk.
      this.carry.push(Buffer.from(chunk.subarray(lineStart)));
    }
  }

  private line(bytes: Buffer, offset: number): void {
    const parsed = this.parse(bytes);
    if (parsed === null) {
      if (this.badRun.length === 0) {
        this.firstBadInRun = { seq: this.head.seq + 1, message: `line at byte ${offset} is not a journal entry` };
      }
      this.badRun.push(offset);
      return;
    }
    if (this.firstBadInRun !== null) {
      // Unparseable lines followed by an entry: corruption in the middle, not a torn tail.
      this.noteBreak(this.firstBadInRun.seq, 'unparseable', this.firstBadInRun.message);
      this.lineStarts.push(...this.badRun);
      this.badRun = [];
      this.firstBadInRun = null;
    }
    this.lineStarts.push(offset);
    const link = checkLinkWithHash(this.head, parsed, parsed.hashOk);
    if (!link.ok) this.noteBreak(link.seq, link.reason, link.message);
    // Continue from the entry as written, so one bad entry is reported once, not as a cascade.
    this.head = { seq: parsed.seq, hash: parsed.hash };
  }

  /**
   * The chain fields of a line, or null when the line is not an entry. Read by position from the
   * raw bytes, no JSON.parse per line: that is what lets verification run near SHA-256 speed. The
   * hash covers every byte, so a wrong hex digit shows as a bad hash or prev; the data's JSON is
   * parsed fully when entries are read for upload (`parseEntryLine`) and again by the server.
   */
  private parse(line: Buffer): { seq: number; prev: string; hash: string; hashOk: boolean } | null {
    if (line.length < LINE_START.length || line.compare(LINE_START, 0, LINE_START.length, 0, LINE_START.length) !== 0) return null;
    const cut = line.lastIndexOf(HASH_MEMBER);
    if (cut < LINE_START.length) return null;
    const tail = line.toString('latin1', cut);
    if (tail.slice(HASH_AT + 64, PREV_AT) !== PREV_MEMBER || tail.slice(PREV_AT + 64, SEQ_AT) !== SEQ_MEMBER) return null;
    const seqEnd = tail.indexOf(',', SEQ_AT);
    const seqText = tail.slice(SEQ_AT, seqEnd);
    if (seqEnd === -1 || !SEQ.test(seqText) || !REST.test(tail.slice(seqEnd))) return null;
    const hash = tail.slice(HASH_AT, HASH_AT + 64);
    const inputLength = line.length - HASH_MEMBER_BYTES;
    if (this.scratch.length < inputLength) this.scratch = Buffer.allocUnsafe(inputLength * 2);
    line.copy(this.scratch, 0, 0, cut);
    line.copy(this.scratch, cut, cut + HASH_MEMBER_BYTES);
    const hashOk = crypto.hash('sha256', this.scratch.subarray(0, inputLength), 'hex') === hash;
    return { seq: Number(seqText), prev: tail.slice(PREV_AT, PREV_AT + 64), hash, hashOk };
  }

  private noteBreak(seq: number, reason: ChainBreak | 'unparseable', message: string): void {
    if (this.firstBreak === null) this.firstBreak = { seq, reason, message };
  }

  finish(fileSize: number): JournalScan {
    const partialStart = this.carry.length > 0 ? this.carryStart : null;
    const tornOffset = this.badRun[0] ?? partialStart;
    const validBytes = tornOffset ?? fileSize;
    return {
      count: this.lineStarts.length,
      lineStarts: this.lineStarts,
      validBytes,
      head: this.head,
      firstBreak: this.firstBreak,
      tornTail: tornOffset === null ? null : { offset: tornOffset, bytes: fileSize - tornOffset },
    };
  }
}
