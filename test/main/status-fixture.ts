import { StatusViewSchema, type PresentDevice, type StatusView } from '../../shared/ipc.js';

/** A status view as the agent sends it, checked against the contract so the fixture cannot drift. */
export function statusView(overrides: Partial<StatusView> = {}): StatusView {
  const blocked: PresentDevice = {
    key: '1-2',
    vendorId: '0781',
    productId: '5567',
    name: 'Cruzer Blade',
    serial: '4C530001',
    interfaces: ['08:06:50'],
    decision: 'block',
    rule: { kind: 'implicit', label: null, exceptionId: null },
  };
  return StatusViewSchema.parse({
    now: '2026-11-26T01:00:00.000Z',
    hostname: 'pc-042',
    user: 'tanaka',
    tier: 'mynumber',
    enforcement: { state: 'enforced', reason: null },
    policy: { version: 12, origin: 'signed', mode: 'enforce', receivedAt: '2026-11-26T00:30:00.000Z' },
    server: { configured: true, enrolled: true, lastContactAt: '2026-11-26T00:59:00.000Z', reachable: true },
    lockState: 'unlocked',
    devices: [blocked],
    exceptions: [],
    recentBlocked: [],
    compliance: { overall: 'pass', ranAt: '2026-11-26T00:10:00.000Z', pass: 12, fail: 0, unknown: 0, failing: [] },
    ...overrides,
  });
}
