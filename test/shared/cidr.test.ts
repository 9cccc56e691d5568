import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { address, cidr, contains, formatAddress, formatCidr, isLoopback, parseAddress, parseCidr, rangeBounds, unmapped, type IpAddress } from '../../shared/cidr.js';

const v4Text = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)).map((octets) => octets.join('.'));
const v4Value = fc.nat(0xffff_ffff);
const v6Value = fc.bigInt({ min: 0n, max: (1n << 128n) - 1n });

describe('parseAddress', () => {
  it.each([
    ['0.0.0.0', 4, 0n],
    ['255.255.255.255', 4, 0xffff_ffffn],
    ['10.20.30.40', 4, 0x0a14_1e28n],
    ['::', 6, 0n],
    ['::1', 6, 1n],
    ['2001:db8::1', 6, 0x2001_0db8_0000_0000_0000_0000_0000_0001n],
    ['2001:DB8:0:0:0:0:0:1', 6, 0x2001_0db8_0000_0000_0000_0000_0000_0001n],
    ['fe80::', 6, 0xfe80n << 112n],
    ['::ffff:192.0.2.1', 6, (0xffffn << 32n) | 0xc000_0201n],
    ['1:2:3:4:5:6:1.2.3.4', 6, 0x0001_0002_0003_0004_0005_0006_0102_0304n],
  ] as const)('reads %s', (text, family, value) => {
    expect(parseAddress(text)).toEqual({ ok: true, value: { family, value } });
  });

  it.each([
    ['', 'empty'],
    ['1.2.3', 'four dot-separated'],
    ['1.2.3.4.5', 'four dot-separated'],
    ['256.1.1.1', 'larger than 255'],
    ['010.0.0.1', 'leading zero'],
    ['0x7f.0.0.1', 'not a decimal'],
    ['1.2.3.-4', 'not a decimal'],
    [' 1.2.3.4', 'not a decimal'],
    ['1::2::3', 'only once'],
    ['1:2:3:4:5:6:7', 'eight groups'],
    ['1:2:3:4:5:6:7:8:9', 'eight groups'],
    ['1:2:3:4::5:6:7:8', 'at least one zero group'],
    ['12345::', 'not 1–4 hex digits'],
    ['fe80::1%eth0', 'zone ids'],
    ['1.2.3.4::', 'may only end'],
    ['::1.2.3.4:5', 'may only end'],
    [':1::', 'empty group'],
    ['g::1', 'only hex digits'],
    ['[::1]', 'only hex digits'],
  ])('refuses %j with a reason (%s)', (text, reason) => {
    const parsed = parseAddress(text);
    expect(parsed.ok).toBe(false);
    if (!parsed.ok) expect(parsed.error.message).toContain(reason);
  });

  it('formats what it parses back to the same address, for any IPv4 and IPv6 value', () => {
    fc.assert(
      fc.property(fc.oneof(v4Value.map((n): IpAddress => ({ family: 4, value: BigInt(n) })), v6Value.map((value): IpAddress => ({ family: 6, value }))), (addr) => {
        expect(parseAddress(formatAddress(addr))).toEqual({ ok: true, value: addr });
      }),
    );
  });

  it('formats IPv6 as RFC 5952 does', () => {
    expect(formatAddress(address('2001:0db8:0000:0000:0001:0000:0000:0001'))).toBe('2001:db8::1:0:0:1');
    expect(formatAddress(address('0:0:0:0:0:0:0:0'))).toBe('::');
    expect(formatAddress(address('1:0:2:3:4:5:6:7'))).toBe('1:0:2:3:4:5:6:7');
    expect(formatAddress(address('::ffff:10.0.0.1'))).toBe('::ffff:10.0.0.1');
  });
});

describe('parseCidr', () => {
  it.each(['10.0.0.0/8', '0.0.0.0/0', '192.168.1.7/32', '2001:db8::/32', '::/0', '::1/128', '::ffff:10.0.0.0/104'])('accepts %s and formats it back', (text) => {
    expect(formatCidr(cidr(text))).toBe(text);
  });

  it.each([
    ['10.0.0.0', 'no /prefix'],
    ['10.0.0.1/8', 'did you mean 10.0.0.0/8'],
    ['10.0.0.0/33', 'longer than 32 bits'],
    ['2001:db8::/129', 'longer than 128 bits'],
    ['10.0.0.0/08', 'without leading zeros'],
    ['10.0.0.0/', 'decimal number'],
    ['10.0.0.0/-1', 'decimal number'],
    ['10.0.0.0/8/8', 'decimal number'],
    ['2001:db8::1/64', 'did you mean 2001:db8::/64'],
    ['10.0.0.0.0/8', 'four dot-separated'],
    ['x'.repeat(200), 'longer than'],
  ])('refuses %j (%s)', (text, reason) => {
    const parsed = parseCidr(text);
    expect(parsed.ok).toBe(false);
    if (!parsed.ok) expect(parsed.error.message).toContain(reason);
  });

  it('escapes control characters it echoes in an error', () => {
    const parsed = parseCidr('1.2.3.4\n/8');
    expect(parsed.ok).toBe(false);
    if (!parsed.ok) expect(parsed.error.message).not.toContain('\n');
  });
});

describe('contains', () => {
  it('matches every address between a range\'s bounds and nothing just outside them (IPv4)', () => {
    fc.assert(
      fc.property(v4Value, fc.integer({ min: 0, max: 32 }), v4Value, (base, prefix, pick) => {
        const hostBits = 32 - prefix;
        const network = hostBits === 32 ? 0 : Math.floor(base / 2 ** hostBits) * 2 ** hostBits;
        const range = { family: 4 as const, network: BigInt(network), prefix };
        const { first, last } = rangeBounds(range);
        const inside = BigInt(network) + (BigInt(pick) % (last.value - first.value + 1n));
        expect(contains(range, { family: 4, value: inside })).toBe(true);
        expect(contains(range, first)).toBe(true);
        expect(contains(range, last)).toBe(true);
        if (first.value > 0n) expect(contains(range, { family: 4, value: first.value - 1n })).toBe(false);
        if (last.value < 0xffff_ffffn) expect(contains(range, { family: 4, value: last.value + 1n })).toBe(false);
      }),
    );
  });

  it('matches every address between a range\'s bounds and nothing just outside them (IPv6)', () => {
    fc.assert(
      fc.property(v6Value, fc.integer({ min: 0, max: 128 }), v6Value, (base, prefix, pick) => {
        const hostBits = BigInt(128 - prefix);
        const range = { family: 6 as const, network: (base >> hostBits) << hostBits, prefix };
        const { first, last } = rangeBounds(range);
        expect(contains(range, { family: 6, value: first.value + (pick % (last.value - first.value + 1n)) })).toBe(true);
        if (first.value > 0n) expect(contains(range, { family: 6, value: first.value - 1n })).toBe(false);
        if (last.value < (1n << 128n) - 1n) expect(contains(range, { family: 6, value: last.value + 1n })).toBe(false);
      }),
    );
  });

  it('agrees with a string-prefix reference on the bits, for any IPv4 range text and address', () => {
    const bits = (text: string): string => text.split('.').map((octet) => Number(octet).toString(2).padStart(8, '0')).join('');
    fc.assert(
      fc.property(v4Text, fc.integer({ min: 0, max: 32 }), v4Text, (base, prefix, candidate) => {
        const networkBits = bits(base).slice(0, prefix).padEnd(32, '0');
        const networkText = (networkBits.match(/.{8}/g) ?? []).map((byte) => parseInt(byte, 2)).join('.');
        const range = cidr(`${networkText}/${prefix}`);
        expect(contains(range, address(candidate))).toBe(bits(candidate).startsWith(networkBits.slice(0, prefix)));
      }),
    );
  });

  it('compares IPv4-mapped IPv6 addresses with IPv4 ranges, and IPv4 addresses with mapped IPv6 ranges', () => {
    expect(contains(cidr('10.0.0.0/8'), address('::ffff:10.1.2.3'))).toBe(true);
    expect(contains(cidr('10.0.0.0/8'), address('::ffff:11.1.2.3'))).toBe(false);
    expect(contains(cidr('::ffff:10.0.0.0/104'), address('10.200.0.1'))).toBe(true);
    expect(contains(cidr('::/0'), address('10.200.0.1'))).toBe(true);
    expect(unmapped(address('::ffff:127.0.0.1'))).toEqual(address('127.0.0.1'));
  });

  it('never puts a plain IPv6 address in an IPv4 range', () => {
    expect(contains(cidr('0.0.0.0/0'), address('2001:db8::1'))).toBe(false);
    expect(contains(cidr('0.0.0.0/0'), address('::a00:1'))).toBe(false);
  });

  it('counts 127.0.0.0/8, ::1 and mapped loopback as loopback, and nothing else', () => {
    for (const text of ['127.0.0.1', '127.255.0.9', '::1', '::ffff:127.0.0.2']) expect(isLoopback(address(text))).toBe(true);
    for (const text of ['128.0.0.1', '::2', '::', '10.0.0.1', '::ffff:10.0.0.1']) expect(isLoopback(address(text))).toBe(false);
  });
});
