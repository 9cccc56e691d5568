import fs from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { PolicySchema, TIER_LABELS, TIERS, validatePolicy, type Policy } from '../../shared/policy.js';

const FIXTURE = path.join(import.meta.dirname, '../fixtures/policies/good-policy.json');

async function goodPolicy(): Promise<Policy> {
  return JSON.parse(await fs.readFile(FIXTURE, 'utf8')) as Policy;
}

type Path = readonly (string | number)[];
/** Marks a field to delete in `withChanges`. */
const DELETE = Symbol('delete');

/** A deep copy of the good policy with the value at each path replaced (or deleted). */
async function withChanges(...changes: (readonly [Path, unknown])[]): Promise<unknown> {
  const policy: unknown = structuredClone(await goodPolicy());
  for (const [path, value] of changes) {
    let parent = policy as Record<string | number, unknown>;
    for (const key of path.slice(0, -1)) parent = parent[key] as Record<string | number, unknown>;
    const last = path[path.length - 1]!;
    if (value === DELETE) delete parent[last];
    else parent[last] = value;
  }
  return policy;
}

describe('PolicySchema', () => {
  it('accepts the policy sketched in DESIGN.md §5', async () => {
    const result = PolicySchema.safeParse(await goodPolicy());
    expect(result.success).toBe(true);
  });

  it('names three tiers with their Japanese labels', () => {
    expect(TIERS).toEqual(['mynumber', 'lgwan', 'internet']);
    expect(TIER_LABELS.mynumber.ja).toBe('マイナンバー利用事務系');
    expect(TIER_LABELS.lgwan.ja).toBe('LGWAN接続系');
    expect(TIER_LABELS.internet.ja).toBe('インターネット接続系');
  });

  it.each([
    ['a version of 0', [['version'], 0] as const, ['version']],
    ['a fractional version', [['version'], 1.5] as const, ['version']],
    ['an issuedAt without an offset', [['issuedAt'], '2026-11-25T09:00:00'] as const, ['issuedAt']],
    ['an unknown tier', [['tier'], 'intranet'] as const, ['tier']],
    ['an unknown mode', [['mode'], 'learn'] as const, ['mode']],
    ['an unknown implicit target', [['usb', 'implicit'], 'read-only'] as const, ['usb', 'implicit']],
    ['a rule that is not a string', [['usb', 'rules', 1], 42] as const, ['usb', 'rules', 1]],
    ['an exception until without an offset', [['exceptions', 0, 'until'], '2026-11-26T17:00:00'] as const, ['exceptions', 0, 'until']],
    ['an exception with an unknown access', [['exceptions', 0, 'access'], 'write-only'] as const, ['exceptions', 0, 'access']],
    ['a negative idle time', [['lock', 'idleSeconds'], -1] as const, ['lock', 'idleSeconds']],
    ['an unknown lock factor', [['lock', 'factors'], ['retina']] as const, ['lock', 'factors', 0]],
    ['a malformed CIDR', [['network', 'allowedCidrs'], ['10.20.0.0']] as const, ['network', 'allowedCidrs', 0]],
    ['a missing report section', [['report'], DELETE] as const, ['report']],
  ])('refuses %s', async (_name, change, issuePath) => {
    const result = PolicySchema.safeParse(await withChanges(change));
    expect(result.success).toBe(false);
    expect(result.error?.issues.map((issue) => issue.path)).toContainEqual(issuePath);
  });

  it.each([
    ['at the top level', [['signature'], 'x'] as const, []],
    ['in usb', [['usb', 'allowReadonly'], []] as const, ['usb']],
    ['in lock', [['lock', 'idle'], 5] as const, ['lock']],
    ['in network', [['network', 'deny'], []] as const, ['network']],
    ['in report', [['report', 'verbose'], true] as const, ['report']],
    ['in an exception', [['exceptions', 0, 'reason'], 'x'] as const, ['exceptions', 0]],
  ])('refuses an unknown field %s', async (_name, change, issuePath) => {
    const result = PolicySchema.safeParse(await withChanges(change));
    expect(result.success).toBe(false);
    expect(result.error?.issues[0]?.code).toBe('unrecognized_keys');
    expect(result.error?.issues[0]?.path).toEqual(issuePath);
  });

  it('refuses a bad rule with an issue naming the rule index, line and column', async () => {
    const result = PolicySchema.safeParse(await withChanges([['usb', 'rules', 2], 'block with-interface one-of { 08:*:* ']));
    expect(result.success).toBe(false);
    const issue = result.error?.issues[0];
    expect(issue?.path).toEqual(['usb', 'rules', 2]);
    expect(issue?.message).toMatch(/^line 3, column \d+: .*\(unterminated-set\)$/);
    expect((issue as { params?: unknown } | undefined)?.params).toMatchObject({ ruleIndex: 2, line: 3, code: 'unterminated-set' });
  });

  it('refuses a bad readOnly match rule and a bad exception device', async () => {
    const result = PolicySchema.safeParse(
      await withChanges([['usb', 'readOnly'], ['allow id 0930:6545']], [['exceptions', 0, 'device'], 'serial XYZ']),
    );
    expect(result.error?.issues.map((issue) => [issue.path, issue.message.slice(0, 17)])).toEqual([
      [['usb', 'readOnly', 0], 'line 1, column 1:'],
      [['exceptions', 0, 'device'], 'line 1, column 8:'],
    ]);
  });

  it('refuses a comment where a rule belongs, since each element is one rule', async () => {
    const result = PolicySchema.safeParse(await withChanges([['usb', 'rules', 3], '# just a comment']));
    expect(result.error?.issues[0]?.message).toContain('(empty-rule)');
  });

  it('refuses two exceptions with one id', async () => {
    const result = PolicySchema.safeParse(await withChanges([['exceptions', 1], (await goodPolicy()).exceptions[0]]));
    expect(result.error?.issues[0]).toMatchObject({ path: ['exceptions', 1, 'id'] });
  });
});

describe('validatePolicy', () => {
  it('parses the rules, match rules and exceptions once, index for index', async () => {
    const result = validatePolicy(await goodPolicy());
    if (!result.ok) throw new Error(result.error.message);
    const validated = result.value;
    expect(validated.rules).toHaveLength(3);
    expect(validated.rules[1]).toMatchObject({ target: 'allow', label: '総務課 暗号化USB #12' });
    expect(validated.ruleLines).toEqual([1, 2, 3]);
    expect(validated.ruleTexts[0]).toBe('allow with-interface equals { 03:*:* }');
    expect(validated.readOnly).toHaveLength(1);
    expect(validated.exceptions).toEqual([
      { id: 'req-123', device: expect.any(Object), user: 'u1024', untilMs: Date.parse('2026-11-26T08:00:00Z'), access: 'read-write' },
    ]);
  });

  it('fails with every issue in one message, each with its path', async () => {
    const result = validatePolicy(
      await withChanges([['usb', 'rules', 0], 'allow foo'], [['usb', 'rules', 2], 'Allow']),
    );
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.error.code).toBe('invalid-policy');
    expect(result.error.message).toMatch(/^usb\.rules\[0\]: line 1, column 7: .*; usb\.rules\[2\]: line 3, column 1: /);
  });

  it('fails without throwing on input that is not an object', () => {
    for (const input of [null, 42, 'policy', [], undefined]) {
      expect(validatePolicy(input).ok).toBe(false);
    }
  });
});
