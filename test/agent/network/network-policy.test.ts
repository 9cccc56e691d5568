import { describe, expect, it } from 'vitest';
import { builtInPolicyDocument } from '../../../agent/policy/profiles.js';
import { settingsFromPolicy } from '../../../agent/network/network-settings.js';
import { validatePolicy } from '../../../shared/policy.js';

function withNetwork(network: Record<string, unknown>) {
  const document = builtInPolicyDocument('mynumber');
  return validatePolicy({ ...document, version: 2, network });
}

describe('the policy network section', () => {
  it('accepts the actions, endpoints and interface lists the network watcher uses, and the watcher reads them', () => {
    const validated = withNetwork({
      allowedCidrs: ['10.20.0.0/16', '2001:db8::/32'],
      onViolation: 'alert-lock',
      allowedEndpoints: ['10.9.0.5:443'],
      defaultRouteAllowed: false,
      allowedInterfaces: ['veth*'],
      protectedInterfaces: ['eth0'],
    });
    expect(validated.ok).toBe(true);
    if (!validated.ok) return;
    const settings = settingsFromPolicy(validated.value.policy.network, 'enforce');
    expect(settings.ok).toBe(true);
    if (!settings.ok) return;
    expect(settings.value).toMatchObject({ onViolation: 'alert-lock', defaultRouteAllowed: false, allowedInterfaces: ['veth*'] });
    expect(settings.value.protectedInterfaces).toContain('eth0');
    expect(settings.value.allowedEndpoints).toHaveLength(1);
  });

  it('reads the older action name block as taking the interface down', () => {
    const validated = withNetwork({ allowedCidrs: [], onViolation: 'block' });
    expect(validated.ok && settingsFromPolicy(validated.value.policy.network, 'audit')).toMatchObject({ ok: true, value: { onViolation: 'alert-disable', audit: true } });
  });

  it('refuses a range with host bits set and an unknown action, naming the field', () => {
    const hostBits = withNetwork({ allowedCidrs: ['10.0.0.1/8'], onViolation: 'alert' });
    expect(hostBits).toMatchObject({ ok: false });
    expect(hostBits.ok ? '' : hostBits.error.message).toMatch(/network\.allowedCidrs\[0\]/);
    expect(withNetwork({ allowedCidrs: [], onViolation: 'shutdown' })).toMatchObject({ ok: false });
    expect(withNetwork({ allowedCidrs: [], onViolation: 'alert', protectedInterfaces: ['eth0; rm -rf /'] })).toMatchObject({ ok: false });
  });
});
