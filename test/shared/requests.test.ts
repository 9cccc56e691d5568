import { describe, expect, it } from 'vitest';
import { DeviceRequestSubmissionSchema, deviceMatchRule, narrowApproval } from '../../shared/requests.js';
import { parseMatcher, ruleMatches } from '../../shared/usb-rules/index.js';

const stick = {
  vendorId: '0930',
  productId: '6545',
  serial: 'AB"C\\1',
  name: '<img src=x onerror=alert(1)>',
  hash: 'kq9Wd1b0Yv2Xq9p8yVb7lCk3n2m1QwErTyUiOpAsDfG=',
  parentHash: 'x',
  viaPort: '1-1',
  connectType: 'hotplug',
  interfaces: ['08:06:50'],
};

describe('device requests', () => {
  it('derives a match rule that matches the device and not a copy with another hash or serial', () => {
    const rule = deviceMatchRule(stick);
    const parsed = parseMatcher(rule);
    if (!parsed.ok) throw new Error(parsed.error.message);
    expect(ruleMatches(parsed.value, stick)).toBe(true);
    expect(ruleMatches(parsed.value, { ...stick, hash: 'other' })).toBe(false);
    expect(ruleMatches(parsed.value, { ...stick, serial: 'ABC1' })).toBe(false);
    expect(deviceMatchRule({ ...stick, serial: '', hash: '' })).toBe('id 0930:6545');
  });

  it('refuses a window that ends before it starts or is longer than 90 days', () => {
    const base = { id: `req_${'a'.repeat(24)}`, user: 'tanaka', device: stick, purpose: '住民票データの受け渡し', from: '2026-11-26T09:00:00+09:00', access: 'read-only', submittedAt: '2026-11-26T09:00:00+09:00' } as const;
    expect(DeviceRequestSubmissionSchema.safeParse({ ...base, until: '2026-11-26T17:00:00+09:00' }).success).toBe(true);
    expect(DeviceRequestSubmissionSchema.safeParse({ ...base, until: '2026-11-26T08:00:00+09:00' }).success).toBe(false);
    expect(DeviceRequestSubmissionSchema.safeParse({ ...base, until: '2027-03-01T09:00:00+09:00' }).success).toBe(false);
    expect(DeviceRequestSubmissionSchema.safeParse({ ...base, until: '2026-11-26T17:00:00+09:00', purpose: '   ' }).success).toBe(false);
  });

  it('lets an approval narrow the window and the access, never widen them', () => {
    const now = Date.parse('2026-11-26T00:00:00Z');
    const request = { until: '2026-11-27T00:00:00.000Z', access: 'read-write' as const };
    expect(narrowApproval(request, {}, now)).toEqual({ ok: true, until: '2026-11-27T00:00:00.000Z', access: 'read-write' });
    expect(narrowApproval(request, { until: '2026-11-26T12:00:00Z', access: 'read-only' }, now)).toEqual({ ok: true, until: '2026-11-26T12:00:00.000Z', access: 'read-only' });
    expect(narrowApproval(request, { until: '2026-11-28T00:00:00Z' }, now).ok).toBe(false);
    expect(narrowApproval({ ...request, access: 'read-only' }, { access: 'read-write' }, now).ok).toBe(false);
    expect(narrowApproval(request, { until: '2026-11-25T00:00:00Z' }, now).ok).toBe(false);
  });
});
