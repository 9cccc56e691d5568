import { Secret } from 'otpauth';
import { describe, expect, it } from 'vitest';
import { SCRYPT_DEFAULTS, checkNewPin, hashPin, totpCode, totpEnrolmentView, totpStep, verifyPin, verifyTotp } from '../../../agent/lock/factors.js';

const FAST = { N: 2 ** 10, r: 8, p: 1, keyLength: 32 };
/** RFC 6238 Appendix B, SHA-1 seed. */
const RFC_SECRET = new TextEncoder().encode('12345678901234567890');
const RFC_VECTORS: readonly [number, string][] = [
  [59, '94287082'],
  [1111111109, '07081804'],
  [1111111111, '14050471'],
  [1234567890, '89005924'],
  [2000000000, '69279037'],
  [20000000000, '65353130'],
];

describe('PIN', () => {
  it('hashes with scrypt N=2^15 r=8 p=1 by default and verifies the right PIN only', async () => {
    const started = performance.now();
    const record = await hashPin('482913');
    const elapsed = performance.now() - started;
    expect(record).toMatchObject({ algorithm: 'scrypt', N: 2 ** 15, r: 8, p: 1, keyLength: 32 });
    expect(SCRYPT_DEFAULTS.N).toBe(32_768);
    expect(elapsed).toBeLessThan(5_000);
    expect(await verifyPin('482913', record)).toBe(true);
    expect(await verifyPin('482914', record)).toBe(false);
  });

  it('uses a fresh salt per hash so equal PINs do not have equal hashes', async () => {
    const a = await hashPin('same-pin', FAST);
    const b = await hashPin('same-pin', FAST);
    expect(a.salt).not.toBe(b.salt);
    expect(a.hash).not.toBe(b.hash);
  });

  it('treats full-width digits from a Japanese IME as the same PIN', async () => {
    const record = await hashPin('123456', FAST);
    expect(await verifyPin('１２３４５６', record)).toBe(true);
  });

  it('verifies with the parameters stored in the record, not the current defaults', async () => {
    const record = await hashPin('old-pin!', { N: 2 ** 11, r: 4, p: 1, keyLength: 24 });
    expect(await verifyPin('old-pin!', record)).toBe(true);
  });

  it('refuses an absurdly long candidate without throwing', async () => {
    const record = await hashPin('123456', FAST);
    expect(await verifyPin('1'.repeat(100_000), record)).toBe(false);
  });

  it('enforces the PIN length rules on a new PIN', () => {
    expect(checkNewPin('12345')).toMatchObject({ ok: false, error: { code: 'pin-too-short' } });
    expect(checkNewPin('x'.repeat(129))).toMatchObject({ ok: false, error: { code: 'pin-too-long' } });
    expect(checkNewPin('１２３４５６')).toEqual({ ok: true, value: '123456' });
  });
});

describe('TOTP', () => {
  it('produces the RFC 6238 SHA-1 test vectors (8 digits) and their 6-digit truncations', () => {
    for (const [seconds, code] of RFC_VECTORS) {
      expect(totpCode(RFC_SECRET, seconds * 1000, 8)).toBe(code);
      expect(totpCode(RFC_SECRET, seconds * 1000)).toBe(code.slice(2));
    }
  });

  it('accepts the RFC vector codes at their time with no earlier step accepted', () => {
    for (const [seconds, code] of RFC_VECTORS) {
      expect(verifyTotp(RFC_SECRET, code.slice(2), seconds * 1000, null)).toEqual({ ok: true, value: { step: Math.floor(seconds / 30) } });
    }
  });

  it('accepts the previous and next step (±1) and nothing further', () => {
    const now = 1_700_000_000_000;
    const step = totpStep(now);
    expect(verifyTotp(RFC_SECRET, totpCode(RFC_SECRET, now - 30_000), now, null)).toEqual({ ok: true, value: { step: step - 1 } });
    expect(verifyTotp(RFC_SECRET, totpCode(RFC_SECRET, now + 30_000), now, null)).toEqual({ ok: true, value: { step: step + 1 } });
    expect(verifyTotp(RFC_SECRET, totpCode(RFC_SECRET, now - 60_000), now, null)).toMatchObject({ ok: false, error: { code: 'wrong-code' } });
    expect(verifyTotp(RFC_SECRET, totpCode(RFC_SECRET, now + 60_000), now, null)).toMatchObject({ ok: false, error: { code: 'wrong-code' } });
  });

  it('accepts a code once only: the same step, or an earlier one, is refused as replayed', () => {
    const now = 1_700_000_000_000;
    const code = totpCode(RFC_SECRET, now);
    const first = verifyTotp(RFC_SECRET, code, now, null);
    expect(first.ok).toBe(true);
    const last = first.ok ? first.value.step : -1;
    expect(verifyTotp(RFC_SECRET, code, now + 5_000, last)).toMatchObject({ ok: false, error: { code: 'replayed' } });
    expect(verifyTotp(RFC_SECRET, totpCode(RFC_SECRET, now - 30_000), now, last)).toMatchObject({ ok: false, error: { code: 'replayed' } });
    expect(verifyTotp(RFC_SECRET, totpCode(RFC_SECRET, now + 30_000), now + 30_000, last).ok).toBe(true);
  });

  it('refuses malformed codes and accepts full-width digits and a space', () => {
    const now = 1_700_000_000_000;
    for (const bad of ['', '12345', '1234567', 'abcdef', '12 34 5']) expect(verifyTotp(RFC_SECRET, bad, now, null)).toMatchObject({ ok: false, error: { code: 'malformed' } });
    const code = totpCode(RFC_SECRET, now);
    const fullWidth = code.replace(/\d/g, (d) => String.fromCharCode(0xff10 + Number(d)));
    expect(verifyTotp(RFC_SECRET, `${fullWidth.slice(0, 3)} ${fullWidth.slice(3)}`, now, null).ok).toBe(true);
  });

  it('builds the enrolment URI (issuer 関守 Sekimori, label user@host, SHA1/6/30) and an SVG QR', async () => {
    const secret = new Uint8Array(20).fill(7);
    const view = await totpEnrolmentView(secret, 'tanaka', 'pc-0042');
    const uri = new URL(view.uri);
    expect(uri.protocol).toBe('otpauth:');
    expect(uri.host).toBe('totp');
    expect(decodeURIComponent(uri.pathname)).toBe('/関守 Sekimori:tanaka@pc-0042');
    expect(uri.searchParams.get('issuer')).toBe('関守 Sekimori');
    expect(uri.searchParams.get('algorithm')).toBe('SHA1');
    expect(uri.searchParams.get('digits')).toBe('6');
    expect(uri.searchParams.get('period')).toBe('30');
    expect(Secret.fromBase32(uri.searchParams.get('secret')!).bytes).toEqual(secret);
    expect(view.secretBase32).toBe(uri.searchParams.get('secret'));
    expect(view.qrSvg).toMatch(/^<svg[\s\S]*<\/svg>\s*$/);
  });
});
