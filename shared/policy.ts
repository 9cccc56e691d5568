import { z } from 'zod';
import { parseCidr } from './cidr.js';
import { err, ok, type Result } from './result.js';
import { MAX_RULE_LENGTH, parseMatcher, parseRule, type Matcher, type Rule, type RuleError, type RuleResult } from './usb-rules/index.js';

/**
 * The endpoint policy (DESIGN.md §5): one JSON document, signed by the server, validated here.
 * Every object is `.strict()`: an unknown field is an error, not ignored, so a typo in a policy
 * never silently weakens it. `lock`, `network` and `report` hold the fields the design sketches;
 * the issues that implement them may extend them (a new policy `version` per change).
 */

/** The three tiers of the seed policy §6(3) (三層の対策), strictest first. */
export const TIERS = ['mynumber', 'lgwan', 'internet'] as const;
export type Tier = (typeof TIERS)[number];
export const TierSchema = z.enum(TIERS);

/** How each tier is called in the UI and in reports. Japanese is the default. */
export const TIER_LABELS: Readonly<Record<Tier, { readonly ja: string; readonly en: string }>> = {
  mynumber: { ja: 'マイナンバー利用事務系', en: 'My Number tier' },
  lgwan: { ja: 'LGWAN接続系', en: 'LGWAN tier' },
  internet: { ja: 'インターネット接続系', en: 'Internet tier' },
};

/** `enforce`: decisions are applied. `audit`: decided and journaled, nothing enforced (roll-out). */
export const PolicyModeSchema = z.enum(['enforce', 'audit']);
export type PolicyMode = z.infer<typeof PolicyModeSchema>;

/** Most rules / match rules / exceptions one policy may carry: bounds the work a policy can cause. */
export const MAX_POLICY_RULES = 10_000;
export const MAX_POLICY_EXCEPTIONS = 10_000;

/** ISO 8601 date-time that names its offset (`Z` or `+09:00`): a local time without one is ambiguous. */
const isoInstant = z.iso.datetime({ offset: true });
const ruleText = z.string().max(MAX_RULE_LENGTH);
const id = z.string().min(1).max(200);

export const UsbPolicySchema = z.strictObject({
  /** USBGuard rules, one per element, evaluated in order, first match wins. */
  rules: z.array(ruleText).max(MAX_POLICY_RULES),
  /** Match rules (rules without a target): an `allow` for a device one of them matches becomes read-only. */
  readOnly: z.array(ruleText).max(MAX_POLICY_RULES),
  /** The target when no rule matches. */
  implicit: z.enum(['allow', 'block', 'reject']),
});

/** The multi-factor lock (DESIGN.md §6); the lock issue refines it. */
export const LockPolicySchema = z.strictObject({
  /** Lock after this many seconds without input; 0 = never on idle. */
  idleSeconds: z.int().min(0).max(86_400),
  onResume: z.boolean(),
  onSessionStart: z.boolean(),
  factors: z.array(z.enum(['password', 'pin', 'totp', 'smartcard', 'fido2'])).min(1).max(5),
  maxFailures: z.int().min(1).max(100),
  /** Days the terminal may stay unlockable without reaching the server. */
  offlineDays: z.int().min(0).max(365),
});

/** IPv4 or IPv6 CIDR, checked precisely (`10.0.0.1/8` is refused: host bits set). */
const cidr = z.string().max(100).superRefine((text, context) => {
  const parsed = parseCidr(text);
  if (!parsed.ok) context.addIssue({ code: 'custom', message: `must be a CIDR such as 10.20.0.0/16: ${parsed.error.message}` });
});

/** A canary target: `host:port` or `[v6]:port`. */
const canaryTarget = z
  .string()
  .max(260)
  .regex(/^(?:\[[0-9A-Fa-f:.]{2,45}\]|[A-Za-z0-9.-]{1,253}):[1-9][0-9]{0,4}$/, 'must be host:port (IPv6 in brackets)')
  .refine((text) => Number(text.slice(text.lastIndexOf(':') + 1)) <= 65_535, 'port must be 1–65535');

/** Interface names as the OS shows them, or a prefix ending in `*` (`veth*`). */
const interfaceName = z.string().regex(/^[A-Za-z0-9_.:@-]{1,32}\*?$/, 'must be an interface name or a prefix ending in *');

export const NetworkPolicySchema = z.strictObject({
  /** Address ranges of the tier; an empty list means no range check. */
  allowedCidrs: z.array(cidr).max(1_000),
  /**
   * What a violation does besides being journaled: `alert` only, `alert-lock` locks the terminal,
   * `alert-disable` takes the interface down. `block` is the older name of `alert-disable`.
   */
  onViolation: z.enum(['alert', 'alert-lock', 'alert-disable', 'block']),
  /** `address:port` pairs allowed outside the ranges (`10.0.0.5:443`, `[2001:db8::1]:443`, `10.9.0.0/24:53`). */
  allowedEndpoints: z.array(z.string().max(120)).max(1_000).optional(),
  /** False: any default route is a violation (a tier that must not reach beyond its networks). */
  defaultRouteAllowed: z.boolean().optional(),
  /** Interfaces that may appear at any time without a violation. */
  allowedInterfaces: z.array(interfaceName).max(100).optional(),
  /** Interfaces `alert-disable` must never take down (the terminal's own network card). */
  protectedInterfaces: z.array(interfaceName).max(100).optional(),
  /**
   * Canary probe: addresses outside the tier the agent tries to reach every `intervalSeconds`; each
   * must fail. A connection that succeeds is a `network.violation` of kind `canary` (the isolation
   * has a hole). `host:port`, IPv6 in brackets; a host name is resolved by the OS (a failed lookup
   * counts as unreachable).
   */
  canary: z
    .strictObject({
      targets: z.array(canaryTarget).min(1).max(20),
      intervalSeconds: z.int().min(10).max(86_400),
    })
    .optional(),
});

/** Glob of a software package name: letters, digits and `+-._:~`, `*` for any run of characters. */
const packagePattern = z.string().regex(/^[A-Za-z0-9+._:~*-][A-Za-z0-9+._:~* ()-]{0,199}$/, 'must be a package name or a glob with *');

/**
 * Software inventory for self-inspection (無許可ソフトウェア, seed §3(2)). With an `allowList`, every
 * installed package must match one of its globs; a package matching the `denyList` always fails.
 */
export const SoftwarePolicySchema = z.strictObject({
  allowList: z.array(packagePattern).max(10_000).optional(),
  denyList: z.array(packagePattern).max(10_000).optional(),
});

/** Printing: logged on every tier; `block` also refuses print jobs (an export channel, 持ち出し). */
export const PrintingPolicySchema = z.strictObject({
  mode: z.enum(['log', 'block']),
});

/** Thresholds of the self-inspection (自己点検) checks; defaults in `agent/selfcheck/`. */
export const SelfcheckPolicySchema = z.strictObject({
  /** Most days since the last OS update before `os-updates` fails (default 35). */
  maxUpdateAgeDays: z.int().min(1).max(3650).optional(),
  /** Most seconds the wall clock may differ from the server's before `time-sync` fails (default 60). */
  maxClockSkewSeconds: z.int().min(1).max(86_400).optional(),
});

export const ReportPolicySchema = z.strictObject({
  heartbeatSeconds: z.int().min(10).max(86_400),
});

/** A temporary permission (一時許可) from the request → approval workflow. */
export const PolicyExceptionSchema = z.strictObject({
  /** The request id, journaled with every decision this exception makes. */
  id,
  /** A match rule naming the device, e.g. `id 0930:6545 serial "XYZ"`. */
  device: ruleText,
  /** When set, the exception applies only while this user is the one the agent decides for. */
  user: id.optional(),
  /** End of the window, with its offset. The exception applies while now < until (exclusive). */
  until: isoInstant,
  access: z.enum(['read-only', 'read-write']),
});

const PolicyShapeSchema = z.strictObject({
  /** Increases with every policy the server issues; the agent refuses a lower one (no rollback). */
  version: z.int().min(1),
  issuedAt: isoInstant,
  tier: TierSchema,
  mode: PolicyModeSchema,
  usb: UsbPolicySchema,
  lock: LockPolicySchema,
  network: NetworkPolicySchema,
  report: ReportPolicySchema,
  exceptions: z.array(PolicyExceptionSchema).max(MAX_POLICY_EXCEPTIONS),
  /** Software allow/deny lists for the self-inspection's inventory check (optional). */
  software: SoftwarePolicySchema.optional(),
  /** Print logging / blocking (optional; absent: logged, not blocked). */
  printing: PrintingPolicySchema.optional(),
  /** Self-inspection thresholds (optional). */
  selfcheck: SelfcheckPolicySchema.optional(),
});

/** A policy document. The rule strings are checked by `PolicySchema` too, not only shaped. */
export type Policy = z.infer<typeof PolicyShapeSchema>;
export type UsbPolicy = Policy['usb'];
export type PolicyException = Policy['exceptions'][number];

/**
 * The full policy schema: shape, plus every rule and match rule parsed (a bad one is an issue at
 * `usb.rules[i]`, `usb.readOnly[i]` or `exceptions[i].device` whose message names the rule's line —
 * its index + 1 — and column, and whose `params` carry `{ ruleIndex, line, column, code }`), plus
 * unique exception ids. Use `validatePolicy` to get the parsed rules as well.
 */
export const PolicySchema = PolicyShapeSchema.superRefine((policy, context) => {
  for (const issue of compile(policy).issues) context.addIssue({ code: 'custom', ...issue });
});

/** An exception with its device matcher parsed and its end as epoch milliseconds. */
export interface ParsedException {
  readonly id: string;
  readonly device: Matcher;
  readonly user: string | null;
  /** `Date.parse(until)`: the exception applies while now < untilMs. */
  readonly untilMs: number;
  readonly access: PolicyException['access'];
}

/**
 * A policy checked and compiled once, for the decision engine: `rules[i]` is `policy.usb.rules[i]`
 * parsed (one rule per element, so its line in the policy's rule list is `i + 1`).
 */
export interface ValidatedPolicy {
  readonly policy: Policy;
  readonly rules: readonly Rule[];
  /** 1-based line of each rule in its source: `i + 1` for a policy, the file line for a rules file. */
  readonly ruleLines: readonly number[];
  /** The text of each rule as written, for the journal. */
  readonly ruleTexts: readonly string[];
  readonly readOnly: readonly Matcher[];
  readonly exceptions: readonly ParsedException[];
}

/** One problem found in a policy, as zod reports it. */
export interface PolicyIssue {
  readonly path: (string | number)[];
  readonly message: string;
  readonly params?: { readonly ruleIndex: number; readonly line: number; readonly column: number; readonly code: string };
}

export type PolicyErrorCode = 'invalid-policy';

/**
 * Validates untrusted JSON (already `JSON.parse`d, e.g. by `parseUntrustedJson`) as a policy and
 * parses its rules once. Fails with `invalid-policy` and a message listing every issue
 * (`usb.rules[3]: line 4, column 7: …`); never throws. A policy with any bad rule is rejected whole.
 */
export function validatePolicy(json: unknown): Result<ValidatedPolicy, PolicyErrorCode> {
  const shaped = PolicyShapeSchema.safeParse(json);
  if (!shaped.success) return err('invalid-policy', describeIssues(shaped.error.issues));
  const compiled = compile(shaped.data);
  if (compiled.issues.length > 0) return err('invalid-policy', describeIssues(compiled.issues));
  return ok(compiled.value);
}

function describeIssues(issues: readonly { readonly path: readonly PropertyKey[]; readonly message: string }[]): string {
  return issues.map((issue) => `${formatPath(issue.path)}: ${issue.message}`).join('; ');
}

function formatPath(path: readonly PropertyKey[]): string {
  if (path.length === 0) return '(policy)';
  return path.map((part, index) => (typeof part === 'number' ? `[${part}]` : `${index === 0 ? '' : '.'}${String(part)}`)).join('');
}

/** Parses every rule, match rule and exception device; collects an issue per bad one. */
function compile(policy: Policy): { value: ValidatedPolicy; issues: PolicyIssue[] } {
  const issues: PolicyIssue[] = [];
  const rules = parseEach(policy.usb.rules, parseRule, ['usb', 'rules'], issues);
  const readOnly = parseEach(policy.usb.readOnly, parseMatcher, ['usb', 'readOnly'], issues);
  const exceptions: ParsedException[] = [];
  const seen = new Set<string>();
  for (const [index, exception] of policy.exceptions.entries()) {
    if (seen.has(exception.id)) issues.push({ path: ['exceptions', index, 'id'], message: `duplicate exception id "${exception.id}"` });
    seen.add(exception.id);
    const device = parseMatcher(exception.device);
    if (!device.ok) {
      issues.push(ruleIssue(['exceptions', index, 'device'], index, device.error));
      continue;
    }
    exceptions.push({ id: exception.id, device: device.value, user: exception.user ?? null, untilMs: Date.parse(exception.until), access: exception.access });
  }
  const ruleLines = policy.usb.rules.map((_, index) => index + 1);
  return { value: { policy, rules, ruleLines, ruleTexts: policy.usb.rules, readOnly, exceptions }, issues };
}

function parseEach<T>(texts: readonly string[], parse: (text: string) => RuleResult<T>, path: (string | number)[], issues: PolicyIssue[]): T[] {
  const parsed: T[] = [];
  for (const [index, text] of texts.entries()) {
    const result = parse(text);
    if (result.ok) parsed.push(result.value);
    else issues.push(ruleIssue([...path, index], index, result.error));
  }
  return parsed;
}

/** One element is one line, so the rule's line in the list is its index + 1 (as `parseRuleSet` counts). */
function ruleIssue(path: (string | number)[], index: number, error: RuleError): PolicyIssue {
  const line = index + 1;
  const detail = error.message.replace(/^line \d+, column \d+: /, '');
  return {
    path,
    message: `line ${line}, column ${error.column}: ${detail} (${error.code})`,
    params: { ruleIndex: index, line, column: error.column, code: error.code },
  };
}
