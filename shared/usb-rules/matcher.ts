import { assertNever } from '../result.js';
import type { UsbDeviceIdentity } from './device.js';
import { interfacePatternCovers, type DeviceInterface } from './interface-classes.js';
import type { AttributeSet, Matcher, Rule, RuleTarget, SetOperator, StringAttributeKey } from './rule.js';

/** Which rule decided, as journaled: `ruleIndex` is 0-based into the rule list, `null` = implicit. */
export interface Decision {
  readonly target: RuleTarget;
  readonly ruleIndex: number | null;
  /** The deciding rule's `label`, when it has one. */
  readonly label?: string;
}

/**
 * Evaluates rules in order; the first rule that matches decides (USBGuard's semantics). When none
 * matches, `implicit` decides with `ruleIndex: null`. Pure and total.
 */
export function evaluate(rules: readonly Rule[], device: UsbDeviceIdentity, implicit: RuleTarget): Decision {
  for (const [index, rule] of rules.entries()) {
    if (ruleMatches(rule, device)) {
      return rule.label === undefined ? { target: rule.target, ruleIndex: index } : { target: rule.target, ruleIndex: index, label: rule.label };
    }
  }
  return { target: implicit, ruleIndex: null };
}

/**
 * Whether every attribute of `rule` matches `device` (absent attributes match anything; `label` is
 * ignored). Accepts full rules and target-less match rules alike. Semantics follow the
 * usbguard-rules.conf(5) man page; README.md lists where USBGuard's code differs and why we follow
 * the man page there.
 */
export function ruleMatches(rule: Matcher, device: UsbDeviceIdentity): boolean {
  if (rule.id !== undefined && !matchSet(rule.id, [deviceId(device)], deviceIdCovers)) return false;
  for (const [key, value] of STRING_FIELDS) {
    const attribute = rule[key];
    if (attribute !== undefined && !matchSet(attribute, [value(device)], stringCovers)) return false;
  }
  if (rule.withInterface !== undefined && !matchSet(rule.withInterface, deviceInterfaces(device), interfacePatternCovers)) {
    return false;
  }
  return true;
}

const STRING_FIELDS: readonly (readonly [StringAttributeKey, (device: UsbDeviceIdentity) => string])[] = [
  ['serial', (device) => device.serial],
  ['name', (device) => device.name],
  ['hash', (device) => device.hash],
  ['parentHash', (device) => device.parentHash],
  ['viaPort', (device) => device.viaPort],
  ['withConnectType', (device) => device.connectType],
];

function deviceId(device: UsbDeviceIdentity): string {
  // Lower-cased defensively: rule ids are normalised to lower case, and the schema demands it here.
  return `${device.vendorId}:${device.productId}`.toLowerCase();
}

function deviceInterfaces(device: UsbDeviceIdentity): DeviceInterface[] {
  return device.interfaces.map((code, index) => ({ code, name: device.interfaceNames?.[index] ?? '' }));
}

/** `vvvv:pppp`, `vvvv:*` or `*:*` against a concrete `vvvv:pppp`. */
function deviceIdCovers(pattern: string, id: string): boolean {
  if (pattern === '*:*') return true;
  if (pattern.endsWith(':*')) return id.startsWith(pattern.slice(0, -1));
  return pattern === id;
}

/** Strings compare exactly, code unit for code unit: no case folding, no normalisation (as USBGuard). */
function stringCovers(pattern: string, value: string): boolean {
  return pattern === value;
}

/**
 * One attribute's set operator. `covers(r, d)` says whether rule value `r` matches device value `d`
 * (wildcards and class names make it more than equality). R = rule values, D = device values:
 * - all-of: every r matches some d.           - one-of: some r matches some d.
 * - none-of: no r matches any d.              - match-all: every d is matched by some r (D ⊆ R).
 * - equals: |R| = |D|, every r matches some d, and every d is matched by some r.
 * - equals-ordered: |R| = |D| and the i-th r matches the i-th d.
 * USBGuard's `equals` lacks the third clause, so `equals { 08:*:* 08:*:* }` would also match a
 * storage+keyboard device there; the man page says "exactly the same set", which we follow.
 */
function matchSet<D>(attribute: AttributeSet, device: readonly D[], covers: (ruleValue: string, deviceValue: D) => boolean): boolean {
  const rule = attribute.values;
  const someDeviceValue = (r: string): boolean => device.some((d) => covers(r, d));
  const someRuleValue = (d: D): boolean => rule.some((r) => covers(r, d));
  const operator: SetOperator = attribute.operator;
  switch (operator) {
    case 'all-of':
      return rule.every(someDeviceValue);
    case 'one-of':
      return rule.some(someDeviceValue);
    case 'none-of':
      return !rule.some(someDeviceValue);
    case 'match-all':
      return device.every(someRuleValue);
    case 'equals':
      return rule.length === device.length && rule.every(someDeviceValue) && device.every(someRuleValue);
    case 'equals-ordered':
      return rule.length === device.length && rule.every((r, index) => covers(r, device[index] as D));
    default:
      return assertNever(operator, 'set operator');
  }
}
