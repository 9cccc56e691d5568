import { contains, formatCidr, parseCidr, type Cidr, type IpAddress } from '../../shared/cidr.js';
import { err, ok, type Result } from '../../shared/result.js';
import type { Policy } from '../../shared/policy.js';

/**
 * What the network watcher enforces, parsed once from the policy's `network` section
 * (`shared/policy.ts`: ranges, action, allowed endpoints, default route, allowed and protected
 * interfaces), plus what the agent adds (its own server endpoint).
 */

/** What happens after a violation is journaled. */
export const NETWORK_ACTIONS = ['alert', 'alert-lock', 'alert-disable'] as const;
export type NetworkAction = (typeof NETWORK_ACTIONS)[number];

/** Plain input, as a policy would carry it (strings). */
export interface NetworkSettingsInput {
  /** Ranges of the tier. Empty: no range check on connections (as the policy schema documents). */
  readonly allowedCidrs: readonly string[];
  /** Extra allowed `address:port` pairs outside the ranges: `10.0.0.5:443`, `[2001:db8::1]:443`, `10.9.0.0/24:53`. */
  readonly allowedEndpoints?: readonly string[];
  readonly onViolation: NetworkAction;
  /** 127.0.0.0/8 and ::1 never violate (default true; tests turn it off to use 127.0.0.2 as "outside"). */
  readonly allowLoopback?: boolean;
  /** False: any default route (0.0.0.0/0, ::/0) is a violation (default true). */
  readonly defaultRouteAllowed?: boolean;
  /** Interfaces that may appear at any time: exact names, or a prefix ending in `*` (`veth*`). */
  readonly allowedInterfaces?: readonly string[];
  /** Interfaces `alert-disable` must never take down (the tier's own NIC the agent reports through). `lo` always. */
  readonly protectedInterfaces?: readonly string[];
  /** Audit mode: journal what would be done, do nothing. */
  readonly audit?: boolean;
  /** Canary probe: `host:port` targets that must stay unreachable, probed every `intervalSeconds`. */
  readonly canary?: { readonly targets: readonly string[]; readonly intervalSeconds: number };
}

/** One canary target: the host as written (an address or a name the OS resolves) and the port. */
export interface CanaryTarget {
  readonly text: string;
  readonly host: string;
  readonly port: number;
}

export interface CanarySettings {
  readonly targets: readonly CanaryTarget[];
  readonly intervalMs: number;
}

export interface AllowedEndpoint {
  readonly range: Cidr;
  readonly port: number;
}

export interface NetworkSettings {
  readonly allowedCidrs: readonly Cidr[];
  readonly allowedEndpoints: readonly AllowedEndpoint[];
  readonly onViolation: NetworkAction;
  readonly allowLoopback: boolean;
  readonly defaultRouteAllowed: boolean;
  readonly allowedInterfaces: readonly string[];
  readonly protectedInterfaces: readonly string[];
  readonly audit: boolean;
  /** Null: no canary probe. */
  readonly canary: CanarySettings | null;
}

export type NetworkSettingsErrorCode = 'invalid-network-settings';

/** Validates and parses settings; the message names every bad entry. Never throws. */
export function parseNetworkSettings(input: NetworkSettingsInput): Result<NetworkSettings, NetworkSettingsErrorCode> {
  const problems: string[] = [];
  const allowedCidrs: Cidr[] = [];
  for (const [index, text] of input.allowedCidrs.entries()) {
    const parsed = parseCidr(text);
    if (parsed.ok) allowedCidrs.push(parsed.value);
    else problems.push(`allowedCidrs[${index}]: ${parsed.error.message}`);
  }
  const allowedEndpoints: AllowedEndpoint[] = [];
  for (const [index, text] of (input.allowedEndpoints ?? []).entries()) {
    const parsed = parseEndpoint(text);
    if (typeof parsed === 'string') problems.push(`allowedEndpoints[${index}]: ${parsed}`);
    else allowedEndpoints.push(parsed);
  }
  if (!(NETWORK_ACTIONS as readonly string[]).includes(input.onViolation)) problems.push(`onViolation: must be one of ${NETWORK_ACTIONS.join(', ')}`);
  const names = (list: readonly string[] | undefined, field: string): string[] => {
    const out: string[] = [];
    for (const [index, name] of (list ?? []).entries()) {
      if (/^[^\s/:]{1,15}$/.test(name)) out.push(name);
      else problems.push(`${field}[${index}]: "${name.slice(0, 40)}" is not an interface name`);
    }
    return out;
  };
  const canaryTargets: CanaryTarget[] = [];
  for (const [index, text] of (input.canary?.targets ?? []).entries()) {
    const parsed = parseCanaryTarget(text);
    if (parsed === null) problems.push(`canary.targets[${index}]: "${text.slice(0, 100)}" is not host:port`);
    else canaryTargets.push(parsed);
  }
  if (input.canary && !(Number.isFinite(input.canary.intervalSeconds) && input.canary.intervalSeconds > 0)) problems.push('canary.intervalSeconds: must be a positive number');
  const allowedInterfaces = names(input.allowedInterfaces, 'allowedInterfaces');
  const protectedInterfaces = names(input.protectedInterfaces, 'protectedInterfaces');
  if (problems.length > 0) return err('invalid-network-settings', problems.join('; '));
  return ok({
    allowedCidrs,
    allowedEndpoints,
    onViolation: input.onViolation,
    allowLoopback: input.allowLoopback ?? true,
    defaultRouteAllowed: input.defaultRouteAllowed ?? true,
    allowedInterfaces,
    protectedInterfaces,
    audit: input.audit ?? false,
    canary: input.canary && canaryTargets.length > 0 ? { targets: canaryTargets, intervalMs: input.canary.intervalSeconds * 1000 } : null,
  });
}

/** `host:port` or `[v6]:port` → its parts; null when malformed. */
export function parseCanaryTarget(text: string): CanaryTarget | null {
  const match = /^(?:\[([0-9A-Fa-f:.]{2,45})\]|([A-Za-z0-9.-]{1,253})):([1-9][0-9]{0,4})$/.exec(text);
  if (!match) return null;
  const port = Number(match[3]);
  if (port > 65_535) return null;
  return { text, host: match[1] ?? match[2] ?? '', port };
}

/**
 * Settings from today's policy section (`shared/policy.ts`): `block` is read as `alert-disable`
 * until the schema names the three actions. Audit mode follows the policy's `mode`.
 */
export function settingsFromPolicy(
  network: Policy['network'],
  mode: 'enforce' | 'audit',
  extra: Omit<NetworkSettingsInput, 'allowedCidrs' | 'onViolation' | 'audit'> = {},
): Result<NetworkSettings, NetworkSettingsErrorCode> {
  return parseNetworkSettings({
    ...extra,
    allowedCidrs: network.allowedCidrs,
    // `block` is the policy's older name for taking the interface down.
    onViolation: network.onViolation === 'block' ? 'alert-disable' : network.onViolation,
    allowedEndpoints: [...(network.allowedEndpoints ?? []), ...(extra.allowedEndpoints ?? [])],
    defaultRouteAllowed: network.defaultRouteAllowed ?? extra.defaultRouteAllowed,
    allowedInterfaces: [...(network.allowedInterfaces ?? []), ...(extra.allowedInterfaces ?? [])],
    protectedInterfaces: [...(network.protectedInterfaces ?? []), ...(extra.protectedInterfaces ?? [])],
    audit: mode === 'audit',
    ...(network.canary ? { canary: network.canary } : {}),
  });
}

/** Whether talking to `address:port` is within the settings (loopback, a range, or an endpoint). */
export function isAllowedRemote(settings: NetworkSettings, address: IpAddress, port: number, loopback: boolean): boolean {
  if (settings.allowLoopback && loopback) return true;
  for (const range of settings.allowedCidrs) if (contains(range, address)) return true;
  for (const endpoint of settings.allowedEndpoints) if (endpoint.port === port && contains(endpoint.range, address)) return true;
  return false;
}

export function interfaceAllowed(patterns: readonly string[], name: string): boolean {
  return patterns.some((pattern) => (pattern.endsWith('*') ? name.startsWith(pattern.slice(0, -1)) : name === pattern));
}

/** `a.b.c.d:port`, `[v6]:port`, `cidr:port` / `[v6cidr]:port`; a bare address means /32 or /128. */
function parseEndpoint(text: string): AllowedEndpoint | string {
  const match = /^(?:\[([^\]]{1,100})\]|([^:[\]]{1,100})):(\d{1,5})$/.exec(text);
  if (!match) return `"${text.slice(0, 100)}" is not address:port (IPv6 in brackets: [2001:db8::1]:443)`;
  const host = match[1] ?? match[2] ?? '';
  const port = Number(match[3]);
  if (port < 1 || port > 65_535 || (match[3] ?? '').startsWith('0')) return `"${text}": port must be 1–65535`;
  const range = parseCidr(host.includes('/') ? host : `${host}/${host.includes(':') ? 128 : 32}`);
  if (!range.ok) return `"${text}": ${range.error.message} (host names are not resolved: write an address)`;
  return { range: range.value, port };
}

export function describeSettings(settings: NetworkSettings): Record<string, unknown> {
  return {
    allowedCidrs: settings.allowedCidrs.map(formatCidr),
    onViolation: settings.onViolation,
    audit: settings.audit,
  };
}
