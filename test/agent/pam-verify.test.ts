import { describe, expect, it } from 'vitest';
import { splitAuthtok } from '../../agent/pam-verify.js';

describe('pam-verify password field', () => {
  it('splits PIN and the trailing 6-digit code, dropping the NUL pam_exec may add and a newline', () => {
    expect(splitAuthtok(Buffer.from('mypin1123456\0'))).toEqual({ ok: true, pin: 'mypin1', code: '123456' });
    expect(splitAuthtok(Buffer.from('mypin1123456\n'))).toEqual({ ok: true, pin: 'mypin1', code: '123456' });
  });

  it('takes full-width digits from a Japanese IME as digits', () => {
    expect(splitAuthtok(Buffer.from('７３９１８４１２３４５６'))).toEqual({ ok: true, pin: '739184', code: '123456' });
  });

  it('refuses a field without a PIN or without a 6-digit code', () => {
    expect(splitAuthtok(Buffer.from('123456')).ok).toBe(false);
    expect(splitAuthtok(Buffer.from('mypin12345a')).ok).toBe(false);
    expect(splitAuthtok(Buffer.from('')).ok).toBe(false);
  });

  it('reads at most 512 bytes', () => {
    const split = splitAuthtok(Buffer.from(`${'p'.repeat(600)}123456`));
    expect(split.ok).toBe(false);
  });
});
