import crypto from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  CHALLENGE_GROUPS,
  LockTransitionSchema,
  challengeDigits,
  dammCheckDigit,
  decodeChallenge,
  decodeResponse,
  encodeChallenge,
  encodeResponse,
  groupWithCheckDigits,
  issuedMinuteOf,
  parseGroupedDigits,
  recoveryTags,
  responseDigits,
  type RecoveryChallenge,
} from '../../shared/lock.js';

const sha256Hex = (text: string): string => crypto.createHash('sha256').update(text, 'utf8').digest('hex');
const hmac = (key: string) => (message: string): Uint8Array => new Uint8Array(crypto.createHmac('sha256', key).update(message).digest());

const sample: RecoveryChallenge = {
  action: 'unlock',
  keyEpoch: 3,
  issuedMinute: issuedMinuteOf(Date.UTC(2025, 3, 1, 9, 30)),
  ...recoveryTags('dev_0123456789abcdef0123456789abcdef', 'tanaka', sha256Hex),
  nonce: '01234567',
};

const challengeArb = fc.record({
  action: fc.constantFrom('unlock' as const, 'reset-lockout' as const),
  keyEpoch: fc.integer({ min: 0, max: 9 }),
  issuedMinute: fc.integer({ min: 0, max: 9999 }),
  deviceTag: fc.stringMatching(/^\d{6}$/),
  userTag: fc.stringMatching(/^\d{4}$/),
  nonce: fc.stringMatching(/^\d{8}$/),
});

describe('Damm check digits', () => {
  it('matches the published example (572 → 4)', () => {
    expect(dammCheckDigit('572')).toBe(4);
    expect(dammCheckDigit('5724')).toBe(0);
  });

  it('detects every single-digit error and every adjacent transposition in every 4-digit group', () => {
    let undetected = 0;
    let checked = 0;
    for (let n = 0; n < 10_000; n++) {
      const data = String(n).padStart(4, '0');
      const group = data + String(dammCheckDigit(data));
      for (let i = 0; i < 5; i++) {
        for (let d = 0; d < 10; d++) {
          if (String(d) === group[i]) continue;
          const changed = group.slice(0, i) + String(d) + group.slice(i + 1);
          checked++;
          if (dammCheckDigit(changed) === 0) undetected++;
        }
        if (i < 4 && group[i] !== group[i + 1]) {
          const swapped = group.slice(0, i) + group[i + 1]! + group[i]! + group.slice(i + 2);
          checked++;
          if (dammCheckDigit(swapped) === 0) undetected++;
        }
      }
    }
    expect(checked).toBeGreaterThan(450_000);
    expect(undetected).toBe(0);
  });
});

describe('recovery challenge codes', () => {
  it('round-trips a challenge through its 6 dictated groups', () => {
    const code = encodeChallenge(sample);
    expect(code).toMatch(/^\d{5}(-\d{5}){5}$/);
    expect(decodeChallenge(code)).toEqual({ ok: true, value: sample });
  });

  it('round-trips any challenge', () => {
    fc.assert(fc.property(challengeArb, (challenge) => {
      expect(decodeChallenge(encodeChallenge(challenge))).toEqual({ ok: true, value: challenge });
    }));
  });

  it('accepts full-width digits, ideographic spaces and no separators as typed from a Japanese IME', () => {
    const code = encodeChallenge(sample);
    const fullWidth = code.replace(/\d/g, (d) => String.fromCharCode(0xff10 + Number(d))).replace(/-/g, '\u3000');
    expect(decodeChallenge(fullWidth)).toEqual({ ok: true, value: sample });
    expect(decodeChallenge(code.replace(/-/g, ''))).toEqual({ ok: true, value: sample });
  });

  it('names the group with a misheard digit instead of saying "wrong code"', () => {
    const code = encodeChallenge(sample);
    const groups = code.split('-');
    const g = groups[3]!;
    groups[3] = g.slice(0, 2) + String((Number(g[2]) + 1) % 10) + g.slice(3);
    const result = decodeChallenge(groups.join('-'));
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.error.code).toBe('check-digit');
    expect(result.groups).toEqual([4]);
    expect(result.ok ? '' : result.error.message).toContain('group 4');
  });

  it('detects any single-digit change and any adjacent transposition in a challenge', () => {
    fc.assert(fc.property(challengeArb, fc.nat(), fc.integer({ min: 1, max: 9 }), fc.boolean(), (challenge, at, delta, transpose) => {
      const digits = encodeChallenge(challenge).replace(/-/g, '');
      const i = at % digits.length;
      let changed: string;
      if (transpose) {
        const j = i % 5 === 4 ? i - 1 : i; // stay inside one group
        fc.pre(digits[j] !== digits[j + 1]);
        changed = digits.slice(0, j) + digits[j + 1]! + digits[j]! + digits.slice(j + 2);
      } else {
        changed = digits.slice(0, i) + String((Number(digits[i]) + delta) % 10) + digits.slice(i + 1);
      }
      const result = decodeChallenge(changed);
      expect(result.ok).toBe(false);
    }));
  });

  it('never throws on any input and never accepts what it cannot re-encode identically', () => {
    fc.assert(fc.property(fc.oneof(fc.string(), fc.stringMatching(/^[\d\- ]{0,40}$/), fc.anything()), (input) => {
      const result = decodeChallenge(input);
      if (result.ok) {
        expect(encodeChallenge(result.value).replace(/-/g, '')).toBe(String(input).replace(/[^\d]/g, ''));
      }
      const response = decodeResponse(input);
      if (response.ok) expect(response.value).toMatch(/^\d{12}$/);
    }), { numRuns: 2_000 });
  });

  it('rejects input that is too long, has letters, or has the wrong number of digits', () => {
    expect(parseGroupedDigits('1'.repeat(500), CHALLENGE_GROUPS)).toMatchObject({ ok: false, error: { code: 'bad-length' } });
    expect(parseGroupedDigits('1234a-12345', 2)).toMatchObject({ ok: false, error: { code: 'bad-character' } });
    expect(parseGroupedDigits('12345', 2)).toMatchObject({ ok: false, error: { code: 'bad-length' } });
    expect(parseGroupedDigits('  ', 2)).toMatchObject({ ok: false, error: { code: 'empty' } });
    expect(parseGroupedDigits(42, 2)).toMatchObject({ ok: false, error: { code: 'empty' } });
  });

  it('rejects an action digit it does not know even when the check digits are right', () => {
    const digits = '9' + challengeDigits(sample).slice(1);
    expect(decodeChallenge(groupWithCheckDigits(digits))).toMatchObject({ ok: false, error: { code: 'bad-field' } });
  });
});

describe('recovery response codes', () => {
  it('is 12 digits in 3 checked groups from HMAC-SHA256 of the challenge, different per key and per challenge', () => {
    const response = encodeResponse(sample, hmac('key-a'));
    expect(response).toMatch(/^\d{5}-\d{5}-\d{5}$/);
    expect(decodeResponse(response)).toEqual({ ok: true, value: responseDigits(sample, hmac('key-a')) });
    expect(responseDigits(sample, hmac('key-b'))).not.toBe(responseDigits(sample, hmac('key-a')));
    expect(responseDigits({ ...sample, nonce: '76543210' }, hmac('key-a'))).not.toBe(responseDigits(sample, hmac('key-a')));
  });
});

describe('lock transitions', () => {
  it('validates a journal-ready transition and rejects unknown fields', () => {
    expect(LockTransitionSchema.safeParse({ from: 'unlocked', to: 'locked', trigger: 'idle', at: 1 }).success).toBe(true);
    expect(LockTransitionSchema.safeParse({ from: 'unlocked', to: 'locked', trigger: 'idle', at: 1, pin: '1' }).success).toBe(false);
  });
});
