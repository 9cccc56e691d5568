import { describe, expect, it } from 'vitest';
import { agoText, codeGroups, decisionLabel, editablePolicy, eventFlag, fill, formatTime, lineColumn, lockLabel, parseEditorJson, policyProblems, tierLabel } from '../../server/dashboard/format.js';

describe('the dashboard’s formatting (no DOM)', () => {
  it('fills named placeholders and leaves unknown ones', () => {
    expect(fill('{n} 台 / {x}', { n: 3 })).toBe('3 台 / {x}');
  });

  it('says how long ago from the server’s time, in Japanese by default and in English', () => {
    const now = '2026-11-25T09:00:00.000Z';
    expect(agoText('2026-11-25T08:59:30.000Z', now, 'ja')).toBe('30秒前');
    expect(agoText('2026-11-25T08:45:00.000Z', now, 'ja')).toBe('15分前');
    expect(agoText('2026-11-25T06:00:00.000Z', now, 'en')).toBe('3 h ago');
    expect(agoText('2026-11-22T09:00:00.000Z', now, 'en')).toBe('3 days ago');
    expect(agoText(null, now, 'ja')).toBe('未接続');
    // A terminal clock ahead of the server never shows a negative age.
    expect(agoText('2026-11-25T09:00:05.000Z', now, 'ja')).toBe('0秒前');
  });

  it('formats times in the given zone, and shows a dash for none', () => {
    expect(formatTime('2026-11-25T00:00:00.000Z', 'ja', 'Asia/Tokyo')).toBe('2026/11/25 09:00:00');
    expect(formatTime(null, 'ja')).toBe('—');
  });

  it('names tiers, lock states and decisions, and passes unknown values through as they are', () => {
    expect(tierLabel('lgwan', 'ja')).toBe('LGWAN接続系');
    expect(tierLabel('other', 'ja')).toBe('other');
    expect(lockLabel('second-factor', 'en')).toBe('locked (waiting for the code)');
    expect(lockLabel(null, 'en')).toBe('—');
    expect(decisionLabel('device.blocked', 'ja')).toBe('遮断');
  });

  it('flags tamper and violation events as the terminal list counts them', () => {
    expect(['tamper.detected', 'device.blocked', 'export.blocked', 'network.violation', 'device.allowed'].map(eventFlag)).toEqual(['tamper', 'violation', 'violation', 'violation', null]);
  });

  it('splits the server’s policy message into one problem per line, keeping each rule’s line and column', () => {
    const message = 'usb.rules[1]: line 1, column 7: expected a target; lock.idleSeconds: Too big: expected number to be <=86400; (policy): must be a JSON object';
    expect(policyProblems(message)).toEqual(['usb.rules[1]: line 1, column 7: expected a target', 'lock.idleSeconds: Too big: expected number to be <=86400', '(policy): must be a JSON object']);
  });

  it('leaves version, issuedAt and tier out of the editor', () => {
    expect(JSON.parse(editablePolicy({ version: 3, issuedAt: 'x', tier: 'lgwan', mode: 'audit' }))).toEqual({ mode: 'audit' });
  });

  it('finds the line and column of a JSON syntax error', () => {
    expect(lineColumn('ab\ncd\nef', 4)).toEqual({ line: 2, column: 2 });
    const parsed = parseEditorJson('{\n  "mode": "enforce",\n  "usb": ]\n}');
    expect(parsed.ok).toBe(false);
    if (!parsed.ok) expect({ line: parsed.line, column: parsed.column }).toEqual({ line: 3, column: 10 });
    expect(parseEditorJson('{"a": 1}')).toEqual({ ok: true, value: { a: 1 } });
  });

  it('splits a response into its groups', () => {
    expect(codeGroups('01234-56789-01234')).toEqual(['01234', '56789', '01234']);
  });
});

describe('finding where a text stops being JSON', () => {
  it('agrees with JSON.parse on what is valid, and points at the first bad character', async () => {
    const { jsonErrorOffset } = await import('../../server/dashboard/format.js');
    const cases: [string, number | null][] = [
      ['{"a": [1, -2.5e3, true, false, null, "x\\u00e9\\n"]}', null],
      [' [] ', null],
      ['{"a": 1,}', 8],
      ['[1 2]', 3],
      ['{"a" 1}', 5],
      ['"abc', 4],
      ['01', 1],
      ['{"a": tru}', 6 + 3],
      ['[1]x', 3],
      ['"\\x"', 2],
      ['', 0],
    ];
    for (const [text, offset] of cases) {
      expect(jsonErrorOffset(text), text).toBe(offset);
      let valid = true;
      try {
        JSON.parse(text);
      } catch {
        valid = false;
      }
      expect(valid, text).toBe(offset === null);
    }
  });
});
