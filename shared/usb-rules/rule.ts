/**
 * The parsed form of a USBGuard rule (usbguard-rules.conf(5)), as produced by `parser.ts`, evaluated
 * by `matcher.ts` and printed back by `format.ts`. Plain immutable data, safe to structured-clone.
 */

/** What happens to a device a rule matches. `allow-readonly` is deliberately not a target: read-only
 * devices are listed in the policy's separate `readOnly` match rules. */
export type RuleTarget = 'allow' | 'block' | 'reject';

export const RULE_TARGETS: readonly RuleTarget[] = ['allow', 'block', 'reject'];

/**
 * How a rule's value set is compared with the device's value set (usbguard-rules.conf(5),
 * "Device Attributes"). A single value without an operator is `equals` over a one-element set.
 */
export type SetOperator = 'all-of' | 'one-of' | 'none-of' | 'equals' | 'equals-ordered' | 'match-all';

export const SET_OPERATORS: readonly SetOperator[] = [
  'all-of',
  'one-of',
  'none-of',
  'equals',
  'equals-ordered',
  'match-all',
];

/** A list with at least one element: USBGuard's grammar has no empty `{ }` set. */
export type NonEmptyArray<T> = readonly [T, ...T[]];

/** One attribute of a rule: its set operator and its values, in the order written. */
export interface AttributeSet<T extends string = string> {
  readonly operator: SetOperator;
  readonly values: NonEmptyArray<T>;
}

/**
 * A device ID pattern, always lower-case: `vvvv:pppp`, `vvvv:*` or `*:*` (`*:pppp` does not exist in
 * USBGuard's language).
 */
export type DeviceIdPattern = string;

/**
 * An interface pattern, always lower-case: `cc:ss:pp`, `cc:ss:*`, `cc:*:*`, or a Sekimori class name
 * such as `mass-storage` (see `interface-classes.ts`).
 */
export type InterfacePattern = string;

/**
 * The device-matching part of a rule. An absent attribute matches every device. `label` never takes
 * part in matching; it is carried to the decision so the journal can name the rule.
 */
export interface Matcher {
  readonly id?: AttributeSet<DeviceIdPattern>;
  readonly serial?: AttributeSet;
  readonly name?: AttributeSet;
  readonly hash?: AttributeSet;
  readonly parentHash?: AttributeSet;
  readonly viaPort?: AttributeSet;
  readonly withInterface?: AttributeSet<InterfacePattern>;
  readonly withConnectType?: AttributeSet;
  readonly label?: string;
}

/** A policy rule: a target and the devices it applies to. */
export interface Rule extends Matcher {
  readonly target: RuleTarget;
}

/** Keys of `Matcher` that hold a value set (everything except `label`). */
export type AttributeKey = Exclude<keyof Matcher, 'label'>;

/** Keys whose values are quoted strings compared byte for byte. */
export type StringAttributeKey = Exclude<AttributeKey, 'id' | 'withInterface'>;

/** An attribute's keyword in the rule language and its key in `Matcher`. */
export interface AttributeSpec {
  readonly keyword: string;
  readonly key: AttributeKey | 'label';
}

/**
 * Every attribute keyword, in the order USBGuard's `Rule::toString()` prints them; `formatRule`
 * uses the same order so its output is USBGuard's canonical form.
 */
export const ATTRIBUTES: readonly AttributeSpec[] = [
  { keyword: 'id', key: 'id' },
  { keyword: 'serial', key: 'serial' },
  { keyword: 'name', key: 'name' },
  { keyword: 'hash', key: 'hash' },
  { keyword: 'parent-hash', key: 'parentHash' },
  { keyword: 'via-port', key: 'viaPort' },
  { keyword: 'with-interface', key: 'withInterface' },
  { keyword: 'with-connect-type', key: 'withConnectType' },
  { keyword: 'label', key: 'label' },
];
