import type { PolicyMode } from '../../shared/policy.js';
import { assertNever } from '../../shared/result.js';
import { ruleMatches, type Matcher, type Rule, type RuleTarget, type UsbDeviceIdentity } from '../../shared/usb-rules/index.js';

/**
 * The USB decision engine (DESIGN.md §4 "policy decision"): pure, synchronous, no I/O.
 *
 * Order of evaluation:
 * 1. Exceptions (一時許可) that are active at `now` and match the device (and its user, if the
 *    exception names one): `read-only` access → `read-only`, `read-write` → `allow`. The first
 *    active matching exception in policy order decides. An exception applies while
 *    `now < until` — at the instant `until` it has ended (exclusive end).
 * 2. Rules, first match wins (USBGuard). An `allow` for a device one of `readOnly` matches becomes
 *    `read-only`.
 * 3. The policy's implicit target.
 * In `audit` mode the decision is the same and `audit: true` tells the caller to enforce nothing.
 */

export type UsbDecisionTarget = 'allow' | 'block' | 'reject' | 'read-only';

/** Facts about the device journaled with the decision; they never change the decision itself. */
export type UsbDecisionFlag =
  /** The device reports no serial: a rule cannot tell two such devices apart. */
  | 'empty-serial'
  /** Another present device has the same VID:PID and serial (a clone, or a vendor reusing serials). */
  | 'duplicate-serial'
  /** An exception names this device but has expired (journaled so an auditor sees why it was denied). */
  | 'exception-expired';

export interface UsbDecisionRule {
  readonly kind: 'rule' | 'exception' | 'implicit';
  /** 0-based index into the policy's `usb.rules`; null for exceptions and implicit. */
  readonly index: number | null;
  /** 1-based line of the rule in its source (the policy's rule list, or a rules file). */
  readonly line: number | null;
  /** The rule as written. */
  readonly text: string | null;
  readonly label: string | null;
  readonly exceptionId: string | null;
}

export interface UsbDecision {
  readonly target: UsbDecisionTarget;
  readonly rule: UsbDecisionRule;
  readonly flags: readonly UsbDecisionFlag[];
  /** True in audit mode: the caller journals the decision but enforces nothing. */
  readonly audit: boolean;
}

/** An exception as the engine needs it (`ParsedException` of shared/policy.ts). */
export interface UsbException {
  readonly id: string;
  readonly device: Matcher;
  readonly user: string | null;
  readonly untilMs: number;
  readonly access: 'read-only' | 'read-write';
}

/**
 * What the engine reads of a policy. `ValidatedPolicy` (shared/policy.ts) is one; the rules CLI
 * builds one from a rules file. `ruleLines` and `ruleTexts` run index for index with `rules`.
 */
export interface UsbPolicyInput {
  readonly policy: { readonly mode: PolicyMode; readonly usb: { readonly implicit: RuleTarget } };
  readonly rules: readonly Rule[];
  readonly ruleLines: readonly number[];
  readonly ruleTexts: readonly string[];
  readonly readOnly: readonly Matcher[];
  readonly exceptions: readonly UsbException[];
}

export interface DecideUsbInput {
  readonly device: UsbDeviceIdentity;
  readonly policy: UsbPolicyInput;
  /** From a trusted clock (agent/policy/trusted-clock.ts), not the raw wall clock. */
  readonly now: Date;
  /**
   * The user the decision is for (the console session's user). An exception that names a user
   * applies only when this is that user; without it such exceptions never apply (fail closed).
   */
  readonly user?: string | null;
  /** How many present devices have each `serialKey`, to flag duplicates; omit when unknown. */
  readonly presentSerials?: ReadonlyMap<string, number>;
}

/** Decides one device. Pure and total: never throws for any valid device and policy. */
export function decideUsb(input: DecideUsbInput): UsbDecision {
  const { device, policy } = input;
  const audit = policy.policy.mode === 'audit';
  const flags = flagsFor(device, input.presentSerials);
  const nowMs = input.now.getTime();

  for (const exception of policy.exceptions) {
    if (exception.user !== null && exception.user !== (input.user ?? null)) continue;
    if (!ruleMatches(exception.device, device)) continue;
    if (!(nowMs < exception.untilMs)) {
      if (!flags.includes('exception-expired')) flags.push('exception-expired');
      continue;
    }
    const rule: UsbDecisionRule = { kind: 'exception', index: null, line: null, text: null, label: null, exceptionId: exception.id };
    return { target: exceptionTarget(exception.access), rule, flags, audit };
  }

  const index = firstMatchingRule(policy.rules, device);
  if (index !== null) {
    const matched = policy.rules[index] as Rule;
    const rule: UsbDecisionRule = {
      kind: 'rule',
      index,
      line: policy.ruleLines[index] ?? index + 1,
      text: policy.ruleTexts[index] ?? null,
      label: matched.label ?? null,
      exceptionId: null,
    };
    const target = matched.target === 'allow' && policy.readOnly.some((matcher) => ruleMatches(matcher, device)) ? 'read-only' : matched.target;
    return { target, rule, flags, audit };
  }

  const implicit: UsbDecisionRule = { kind: 'implicit', index: null, line: null, text: null, label: null, exceptionId: null };
  return { target: policy.policy.usb.implicit, rule: implicit, flags, audit };
}

function exceptionTarget(access: UsbException['access']): UsbDecisionTarget {
  switch (access) {
    case 'read-only':
      return 'read-only';
    case 'read-write':
      return 'allow';
    default:
      return assertNever(access, 'exception access');
  }
}

/** The key duplicate serials are counted by: `vvvv:pppp:serial`. */
export function serialKey(device: UsbDeviceIdentity): string {
  return `${device.vendorId}:${device.productId}:${device.serial}`;
}

/** Counts `serialKey`s over the present devices (devices without a serial are not counted). */
export function countSerials(devices: Iterable<UsbDeviceIdentity>): Map<string, number> {
  const counts = new Map<string, number>();
  for (const device of devices) {
    if (device.serial === '') continue;
    const key = serialKey(device);
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return counts;
}

/**
 * The flags of one device: `empty-serial` from the device alone, `duplicate-serial` when
 * `presentSerials` (from `countSerials` over every present device, this one included) counts
 * its key more than once.
 */
export function flagsFor(device: UsbDeviceIdentity, presentSerials?: ReadonlyMap<string, number>): UsbDecisionFlag[] {
  if (device.serial === '') return ['empty-serial'];
  if (presentSerials !== undefined && (presentSerials.get(serialKey(device)) ?? 0) > 1) return ['duplicate-serial'];
  return [];
}

// ---------------------------------------------------------------------------------------------
// Rule index. A 1,000-rule policy is mostly registered devices (`allow id vvvv:pppp serial "…"`,
// or USBGuard's generated `… hash "…"` rules); matching all of them against every device would
// cost ~1,000 `ruleMatches` calls per decision. So each rule list is bucketed once by the most
// selective attribute a rule pins — id, else serial, else hash — and a decision tries only the
// rules that could match, in rule order (first match still wins). `ruleMatches` stays the only
// judge; the index is a pre-filter and never decides by itself.
//
// Why the pre-filter is safe: for a one-value device attribute (id, serial, hash), every set
// operator except `none-of` matches only when some rule value covers the device's value. So a
// rule whose id values are all concrete or `vvvv:*` can match only devices with those ids/vendors,
// and a rule with a serial (hash) set only devices whose serial (hash) is in that set.

interface RuleIndex {
  /** Rules that pin nothing indexable: tried for every device. */
  readonly general: readonly number[];
  /** Keys `i:vvvv:pppp`, `v:vvvv`, `s:<serial>`, `h:<hash>` → ascending rule indexes. */
  readonly buckets: ReadonlyMap<string, readonly number[]>;
}

const EMPTY: readonly number[] = [];
const indexes = new WeakMap<readonly Rule[], RuleIndex>();

function ruleIndex(rules: readonly Rule[]): RuleIndex {
  let index = indexes.get(rules);
  if (index === undefined) {
    index = buildIndex(rules);
    indexes.set(rules, index);
  }
  return index;
}

function bucketKeys(rule: Rule): string[] | null {
  const { id, serial, hash } = rule;
  if (id !== undefined && id.operator !== 'none-of' && !id.values.includes('*:*')) {
    return id.values.map((value) => (value.endsWith(':*') ? `v:${value.slice(0, 4)}` : `i:${value}`));
  }
  if (serial !== undefined && serial.operator !== 'none-of') return serial.values.map((value) => `s:${value}`);
  if (hash !== undefined && hash.operator !== 'none-of') return hash.values.map((value) => `h:${value}`);
  return null;
}

function buildIndex(rules: readonly Rule[]): RuleIndex {
  const general: number[] = [];
  const buckets = new Map<string, number[]>();
  for (const [position, rule] of rules.entries()) {
    const keys = bucketKeys(rule);
    if (keys === null) {
      general.push(position);
      continue;
    }
    for (const key of keys) {
      const list = buckets.get(key);
      if (list === undefined) buckets.set(key, [position]);
      else if (list[list.length - 1] !== position) list.push(position);
    }
  }
  return { general, buckets };
}

/** The first rule (lowest index) that matches, or null: a merge of five ascending lists. */
function firstMatchingRule(rules: readonly Rule[], device: UsbDeviceIdentity): number | null {
  const { general, buckets } = ruleIndex(rules);
  const lists = [
    general,
    buckets.get(`i:${device.vendorId}:${device.productId}`) ?? EMPTY,
    buckets.get(`v:${device.vendorId}`) ?? EMPTY,
    buckets.get(`s:${device.serial}`) ?? EMPTY,
    buckets.get(`h:${device.hash}`) ?? EMPTY,
  ];
  const cursors = [0, 0, 0, 0, 0];
  for (;;) {
    let next = Infinity;
    for (let list = 0; list < 5; list++) {
      const value = (lists[list] as readonly number[])[cursors[list] as number];
      if (value !== undefined && value < next) next = value;
    }
    if (next === Infinity) return null;
    // Advance every list at `next`: a rule may sit in several buckets (e.g. `id one-of { a b }`).
    for (let list = 0; list < 5; list++) {
      if ((lists[list] as readonly number[])[cursors[list] as number] === next) cursors[list] = (cursors[list] as number) + 1;
    }
    if (ruleMatches(rules[next] as Rule, device)) return next;
  }
}
