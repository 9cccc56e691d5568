import { assertNever } from '../result.js';
import { lineError, positioned, type LineError, type RuleError, type RuleResult } from './errors.js';
import { INTERFACE_CLASS_NAMES, isInterfaceClassName, normaliseInterfaceCode } from './interface-classes.js';
import { tokenize, type Token } from './lexer.js';
import {
  ATTRIBUTES,
  RULE_TARGETS,
  SET_OPERATORS,
  type AttributeKey,
  type AttributeSet,
  type AttributeSpec,
  type Matcher,
  type Rule,
  type RuleTarget,
  type SetOperator,
} from './rule.js';

/**
 * Longest accepted line, in UTF-16 code units. Far above any real rule (a `hash one-of { … }` over a
 * thousand devices is ~46k); it bounds the work a hostile policy line can cause.
 */
export const MAX_RULE_LENGTH = 65_536;

/**
 * Parses one rule in USBGuard's rule language (usbguard-rules.conf(5)) plus Sekimori's interface
 * class names. Fails with a positioned `RuleError` (line 1); never throws. A trailing `# comment` is
 * allowed, as in USBGuard; leading and trailing blanks are ignored.
 */
export function parseRule(text: string): RuleResult<Rule> {
  return parseSingle(text, 'rule');
}

/**
 * Parses a match rule: a rule without its target, e.g. `id 0930:6545 serial "D4E5F6"` — the form of
 * the policy's `readOnly` entries. Same grammar and errors as `parseRule`; a leading target is an
 * `unexpected-target` error.
 */
export function parseMatcher(text: string): RuleResult<Matcher> {
  return parseSingle(text, 'matcher');
}

/**
 * Parses a rule set: a rules.conf-style text (lines split on LF or CRLF, a leading byte-order mark
 * ignored) or an array with one rule per element (the policy's `usb.rules`). Blank lines and `#`
 * comment lines are skipped. The first bad line rejects the whole set.
 */
export function parseRuleSet(source: string | readonly string[]): RuleResult<Rule[]> {
  return parseLines(source, 'rule');
}

/** `parseRuleSet` for match rules (the policy's `usb.readOnly`). */
export function parseMatcherSet(source: string | readonly string[]): RuleResult<Matcher[]> {
  return parseLines(source, 'matcher');
}

type Mode = 'rule' | 'matcher';
type Parsed<M extends Mode> = M extends 'rule' ? Rule : Matcher;
type LineOutcome<T> = { readonly kind: 'empty' } | { readonly kind: 'parsed'; readonly value: T } | { readonly kind: 'error'; readonly error: LineError };

function parseSingle<M extends Mode>(text: string, mode: M): RuleResult<Parsed<M>> {
  const newline = text.indexOf('\n');
  if (newline >= 0) {
    return failure(lineError('multiple-lines', newline, 'a rule is a single line; use parseRuleSet for several rules'), 1);
  }
  const outcome = parseLine(text, mode);
  switch (outcome.kind) {
    case 'parsed':
      return { ok: true, value: outcome.value };
    case 'error':
      return failure(outcome.error, 1);
    case 'empty':
      return failure(lineError('empty-rule', 0, mode === 'rule' ? 'expected a rule, found an empty line' : 'expected a match rule, found an empty line'), 1);
    default:
      return assertNever(outcome, 'line outcome');
  }
}

function parseLines<M extends Mode>(source: string | readonly string[], mode: M): RuleResult<Parsed<M>[]> {
  const values: Parsed<M>[] = [];
  const lines = typeof source === 'string' ? splitLines(source) : source;
  for (const [index, line] of lines.entries()) {
    const lineNumber = index + 1;
    const newline = line.indexOf('\n');
    if (newline >= 0) {
      return failure(lineError('multiple-lines', newline, 'each element of a rule list is a single line'), lineNumber);
    }
    const outcome = parseLine(line, mode);
    switch (outcome.kind) {
      case 'parsed':
        values.push(outcome.value);
        break;
      case 'empty':
        break;
      case 'error':
        return failure(outcome.error, lineNumber);
      default:
        return assertNever(outcome, 'line outcome');
    }
  }
  return { ok: true, value: values };
}

function splitLines(text: string): string[] {
  const withoutBom = text.startsWith('\uFEFF') ? text.slice(1) : text;
  return withoutBom.split('\n').map((line) => (line.endsWith('\r') ? line.slice(0, -1) : line));
}

function failure(error: LineError, line: number): { ok: false; error: RuleError } {
  return { ok: false, error: positioned(error, line) };
}

/** Thrown inside the line parser only, to unwind to `parseLine`; never escapes this module. */
class LineParseFailure extends Error {
  constructor(readonly error: LineError) {
    super(error.detail);
  }
}

function fail(code: LineError['code'], index: number, detail: string): never {
  throw new LineParseFailure(lineError(code, index, detail));
}

function parseLine<M extends Mode>(line: string, mode: M): LineOutcome<Parsed<M>> {
  if (line.length > MAX_RULE_LENGTH) {
    return { kind: 'error', error: lineError('too-long', MAX_RULE_LENGTH, `a rule may be at most ${MAX_RULE_LENGTH} characters long`) };
  }
  const tokens = tokenize(line);
  const first = tokens[0];
  if (first !== undefined && (first.kind === 'end' || first.kind === 'comment')) return { kind: 'empty' };
  try {
    const parsed = new LineParser(tokens).parse(mode);
    return { kind: 'parsed', value: parsed as Parsed<M> };
  } catch (caught) {
    if (caught instanceof LineParseFailure) return { kind: 'error', error: caught.error };
    throw caught;
  }
}

const KEYWORDS = new Map<string, AttributeSpec>(ATTRIBUTES.map((spec) => [spec.keyword, spec]));
const ATTRIBUTE_LIST = ATTRIBUTES.map((spec) => spec.keyword).join(', ');
const DEVICE_ID = /^([0-9a-fA-F]{4}|\*):([0-9a-fA-F]{4}|\*)$/;
/** Loose shape of a device id, to recognise USBGuard's bare `allow 1050:0011` form. */
const DEVICE_ID_SHAPE = /^[0-9a-fA-F*]+:[0-9a-fA-F*]+$/;

type MutableMatcher = { -readonly [K in keyof Matcher]: Matcher[K] };

/** Recursive descent over one line's tokens; every failure throws `LineParseFailure`. */
class LineParser {
  private position = 0;
  private readonly matcher: MutableMatcher = {};

  constructor(private readonly tokens: readonly Token[]) {}

  parse(mode: Mode): Rule | Matcher {
    const target = mode === 'rule' ? this.parseTarget() : this.refuseTarget();
    let bareIdAllowed = true;
    for (;;) {
      const token = this.peek();
      if (token.kind === 'end' || token.kind === 'comment') break;
      if (token.kind !== 'word') this.unexpected(token, 'an attribute name');
      if (target !== null || !bareIdAllowed) this.requireBlank(token, "between a rule's items");
      this.position++;
      const spec = KEYWORDS.get(token.text);
      if (spec !== undefined) {
        this.parseAttribute(spec, token);
      } else if (bareIdAllowed && DEVICE_ID_SHAPE.test(token.text)) {
        // USBGuard's grammar: `target [device-id] attributes…` — `allow 1050:0011` means `allow id 1050:0011`.
        this.store({ keyword: 'id', key: 'id' }, token, { operator: 'equals', values: [this.deviceId(token)] });
      } else {
        this.unknownAttribute(token);
      }
      bareIdAllowed = false;
    }
    const matcher: Matcher = this.matcher;
    return target === null ? matcher : { target, ...matcher };
  }

  private parseTarget(): RuleTarget {
    const token = this.next();
    if (token.kind === 'word') {
      const target = RULE_TARGETS.find((candidate) => candidate === token.text);
      if (target !== undefined) return target;
      if (token.text === 'match' || token.text === 'device') {
        fail('unknown-target', token.index, `'${token.text}' is an internal USBGuard target, not a policy target; use allow, block or reject`);
      }
      const lower = token.text.toLowerCase();
      if (RULE_TARGETS.some((candidate) => candidate === lower)) {
        fail('unknown-target', token.index, `unknown target '${token.text}'; targets are lower-case: allow, block or reject`);
      }
    }
    if (token.kind === 'error') throw new LineParseFailure(token.error);
    fail('unknown-target', token.index, `a rule starts with its target: allow, block or reject (found ${describeToken(token)})`);
  }

  /** Match rules have no target; returns `null` so `parse` knows there is none. */
  private refuseTarget(): null {
    const token = this.peek();
    if (token.kind === 'word' && (RULE_TARGETS.some((candidate) => candidate === token.text) || token.text === 'match')) {
      fail('unexpected-target', token.index, `a match rule has no target; remove '${token.text}'`);
    }
    return null;
  }

  private parseAttribute(spec: AttributeSpec, name: Token & { kind: 'word' }): void {
    const first = this.peek();
    if (first.kind === 'end' || first.kind === 'comment') {
      fail('expected-value', first.index, `'${spec.keyword}' needs a value, e.g. ${example(spec)}`);
    }
    this.requireBlank(first, `between '${spec.keyword}' and its value`);
    let operator: SetOperator | null = null;
    let open: Token | null = null;
    if (first.kind === 'word' && isSetOperator(first.text)) {
      this.position++;
      operator = first.text;
      const brace = this.peek();
      if (brace.kind !== 'open') {
        fail('expected-set', brace.index, `the set operator '${first.text}' must be followed by { values… }`);
      }
      this.requireBlank(brace, `between '${first.text}' and {`);
      open = this.next();
    } else if (first.kind === 'open') {
      open = this.next();
    }
    if (spec.key === 'label') {
      if (open !== null) {
        fail('label-set-unsupported', operator === null ? open.index : first.index, 'a label is a single string here, not a set');
      }
      this.store(spec, name, this.stringValue(this.next(), spec));
      return;
    }
    const values = open === null ? [this.value(spec, this.next())] : this.setValues(spec, open);
    const head = values[0];
    if (head === undefined) throw new Error('a set without values got past setValues');
    this.store(spec, name, { operator: operator ?? 'equals', values: [head, ...values.slice(1)] });
  }

  private setValues(spec: AttributeSpec, open: Token): string[] {
    const values: string[] = [];
    for (;;) {
      const token = this.peek();
      if (token.kind === 'close') {
        this.position++;
        if (values.length === 0) fail('empty-set', open.index, "an empty set { } is not allowed (USBGuard's grammar needs at least one value)");
        return values;
      }
      if (token.kind === 'end' || token.kind === 'comment') {
        fail('unterminated-set', open.index, token.kind === 'comment' ? 'this set has no closing } before the # comment' : 'this set has no closing }');
      }
      if (token.kind === 'error') throw new LineParseFailure(token.error);
      if (values.length > 0) this.requireBlank(token, 'between the values of a set');
      this.position++;
      values.push(this.value(spec, token));
    }
  }

  private value(spec: AttributeSpec, token: Token): string {
    switch (spec.key) {
      case 'id':
        return this.deviceId(token);
      case 'withInterface':
        return this.interfaceValue(token);
      case 'serial':
      case 'name':
      case 'hash':
      case 'parentHash':
      case 'viaPort':
      case 'withConnectType':
      case 'label':
        return this.stringValue(token, spec);
      default:
        return assertNever(spec.key, 'attribute');
    }
  }

  private deviceId(token: Token): string {
    if (token.kind === 'word') {
      const match = DEVICE_ID.exec(token.text);
      if (match !== null && !(match[1] === '*' && match[2] !== '*')) return token.text.toLowerCase();
      if (match !== null) fail('invalid-device-id', token.index, `'${token.text}': with a '*' vendor the product must be '*' too (*:*)`);
      fail('invalid-device-id', token.index, `invalid device id '${token.text}'; expected vvvv:pppp (4 hex digits each), vvvv:* or *:*`);
    }
    if (token.kind === 'string') fail('invalid-device-id', token.index, 'device ids are not quoted: write id 0930:6545');
    this.unexpected(token, 'a device id');
  }

  private interfaceValue(token: Token): string {
    if (token.kind === 'word') {
      if (isInterfaceClassName(token.text)) return token.text;
      const normalised = normaliseInterfaceCode(token.text);
      if (normalised !== null) return normalised;
      if (/^[0-9a-fA-F]{2}:\*:[0-9a-fA-F]{2}$/.test(token.text)) {
        fail('invalid-interface', token.index, `'${token.text}': a '*' subclass needs a '*' protocol too (cc:*:*)`);
      }
      fail(
        'invalid-interface',
        token.index,
        `invalid interface '${token.text}'; expected cc:ss:pp in hex (cc:ss:* and cc:*:* allowed) or a class name: ${INTERFACE_CLASS_NAMES.join(', ')}`,
      );
    }
    if (token.kind === 'string') fail('invalid-interface', token.index, 'interface types are not quoted: write with-interface 08:*:*');
    this.unexpected(token, 'an interface type');
  }

  private stringValue(token: Token, spec: AttributeSpec): string {
    if (token.kind === 'string') return token.value;
    if (token.kind === 'word') fail('expected-string', token.index, `'${spec.keyword}' takes a quoted string, e.g. ${example(spec)}`);
    this.unexpected(token, 'a quoted string');
  }

  private store(spec: AttributeSpec, name: Token, value: AttributeSet | string): void {
    if (this.matcher[spec.key] !== undefined) {
      fail('duplicate-attribute', name.index, `'${spec.keyword}' appears twice; each attribute may appear once per rule (as in USBGuard)`);
    }
    if (spec.key === 'label') {
      if (typeof value !== 'string') throw new Error('label stored as a set');
      this.matcher.label = value;
    } else {
      if (typeof value === 'string') throw new Error(`${spec.keyword} stored as a string`);
      setAttribute(this.matcher, spec.key, value);
    }
  }

  private unknownAttribute(token: Token & { kind: 'word' }): never {
    if (token.text === 'if') {
      fail('conditions-unsupported', token.index, "rule conditions ('if …') are not supported: Sekimori would have to ignore them, which would apply the rule unconditionally");
    }
    if (DEVICE_ID_SHAPE.test(token.text)) {
      fail('unknown-attribute', token.index, `'${token.text}' looks like a device id; write 'id ${token.text}' (a bare id is allowed only right after the target)`);
    }
    if (isSetOperator(token.text)) {
      fail('unknown-attribute', token.index, `the set operator '${token.text}' must follow an attribute name, e.g. with-interface ${token.text} { 08:*:* }`);
    }
    fail('unknown-attribute', token.index, `unknown attribute '${token.text}'; expected one of: ${ATTRIBUTE_LIST}`);
  }

  private requireBlank(token: Token, where: string): void {
    if (!token.blankBefore && token.kind !== 'end' && token.kind !== 'comment' && token.kind !== 'error') {
      fail('missing-blank', token.index, `a space is needed ${where}`);
    }
  }

  private unexpected(token: Token, expected: string): never {
    if (token.kind === 'error') throw new LineParseFailure(token.error);
    fail('unexpected-token', token.index, `expected ${expected}, found ${describeToken(token)}`);
  }

  private peek(): Token {
    const token = this.tokens[this.position];
    if (token === undefined) throw new Error('read past the end token');
    return token;
  }

  private next(): Token {
    const token = this.peek();
    if (token.kind !== 'end') this.position++;
    return token;
  }
}

function setAttribute(matcher: MutableMatcher, key: AttributeKey, value: AttributeSet): void {
  switch (key) {
    case 'id':
    case 'serial':
    case 'name':
    case 'hash':
    case 'parentHash':
    case 'viaPort':
    case 'withInterface':
    case 'withConnectType':
      matcher[key] = value;
      return;
    default:
      assertNever(key, 'attribute');
  }
}

function isSetOperator(word: string): word is SetOperator {
  return SET_OPERATORS.some((operator) => operator === word);
}

function describeToken(token: Token): string {
  switch (token.kind) {
    case 'word':
      return `'${token.text}'`;
    case 'string':
      return 'a quoted string';
    case 'open':
      return '{';
    case 'close':
      return '}';
    case 'comment':
      return 'a # comment';
    case 'end':
      return 'the end of the line';
    case 'error':
      return token.error.detail;
    default:
      return assertNever(token, 'token');
  }
}

function example(spec: AttributeSpec): string {
  switch (spec.key) {
    case 'id':
      return 'id 0930:6545';
    case 'withInterface':
      return 'with-interface 08:*:*';
    case 'serial':
    case 'name':
    case 'hash':
    case 'parentHash':
    case 'viaPort':
    case 'withConnectType':
    case 'label':
      return `${spec.keyword} "…"`;
    default:
      return assertNever(spec.key, 'attribute');
  }
}
