/**
 * The fields an auditor or a SIEM looks for in a journal event's `data`, read defensively: `data`
 * is whatever the terminal sent (any JSON), so every field is optional and only strings and
 * finite numbers are taken. Shapes follow what the agent journals (agent/usb/device-control.ts,
 * agent/lock/lock-service.ts): `device: { id: "VID:PID", manufacturer, name, serial }`,
 * `decision`, `rule: { kind, line, text, label, exceptionId }`, `user`.
 */
export interface EventFields {
  readonly user: string | null;
  /** `VID:PID` of a USB device. */
  readonly usbId: string | null;
  /** The device's manufacturer string (the vendor as the device names itself). */
  readonly usbManufacturer: string | null;
  /** The device's product string. */
  readonly usbName: string | null;
  readonly usbSerial: string | null;
  readonly decision: string | null;
  /** The deciding rule in words: `line 3 [label]: allow id …`, `exception EXC-1`, `implicit`. */
  readonly rule: string | null;
  /** The approval (申請) or exception behind the decision. */
  readonly exceptionId: string | null;
}

type JsonRecord = Readonly<Record<string, unknown>>;

function record(value: unknown): JsonRecord | null {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as JsonRecord) : null;
}

function text(value: unknown): string | null {
  if (typeof value === 'string') return value === '' ? null : value;
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  return null;
}

function firstText(...values: unknown[]): string | null {
  for (const value of values) {
    const found = text(value);
    if (found !== null) return found;
  }
  return null;
}

export function eventFields(data: unknown): EventFields {
  const root = record(data) ?? {};
  const device = record(root['device']) ?? {};
  const rule = record(root['rule']);
  const exception = record(root['exception']);
  const vendorId = text(root['vendorId']);
  const productId = text(root['productId']);
  return {
    user: text(root['user']),
    usbId: firstText(device['id'], vendorId !== null && productId !== null ? `${vendorId}:${productId}` : null),
    usbManufacturer: firstText(device['manufacturer'], device['vendor'], root['manufacturer']),
    usbName: firstText(device['name'], device['product'], root['name']),
    usbSerial: firstText(device['serial'], root['serial']),
    decision: text(root['decision']),
    rule: describeRule(rule),
    exceptionId: firstText(rule?.['exceptionId'], root['exceptionId'], exception?.['id'], root['approvalId'], root['requestId']),
  };
}

function describeRule(rule: JsonRecord | null): string | null {
  if (rule === null) return null;
  const kind = text(rule['kind']);
  switch (kind) {
    case 'rule': {
      const line = text(rule['line']);
      const label = text(rule['label']);
      const ruleText = text(rule['text']);
      return `line ${line ?? '?'}${label === null ? '' : ` [${label}]`}${ruleText === null ? '' : `: ${ruleText}`}`;
    }
    case 'exception':
      return `exception ${text(rule['exceptionId']) ?? '?'}`;
    default:
      return kind;
  }
}
