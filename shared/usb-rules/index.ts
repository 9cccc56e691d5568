/** The USBGuard rule language, pure: parse, match, format. See README.md. */
export { UsbDeviceIdentitySchema, type UsbDeviceIdentity } from './device.js';
export type { RuleError, RuleErrorCode, RuleResult } from './errors.js';
export { formatMatcher, formatRule, quoteString, type FormatOptions } from './format.js';
export {
  INTERFACE_CLASS_NAMES,
  interfaceClassMembers,
  isInterfaceClassName,
  isMtpInterface,
  type InterfaceClassName,
} from './interface-classes.js';
export { evaluate, ruleMatches, type Decision } from './matcher.js';
export { MAX_RULE_LENGTH, parseMatcher, parseMatcherSet, parseRule, parseRuleSet } from './parser.js';
export {
  ATTRIBUTES,
  RULE_TARGETS,
  SET_OPERATORS,
  type AttributeSet,
  type DeviceIdPattern,
  type InterfacePattern,
  type Matcher,
  type NonEmptyArray,
  type Rule,
  type RuleTarget,
  type SetOperator,
} from './rule.js';
