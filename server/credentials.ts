import { randomBase64Url, randomHex, secretMatchesHash, sha256Hex } from './crypto.js';
import type { Store } from './store.js';

/**
 * A new device identity: a random id (never derived from the hardware id, so cloned PCs become
 * distinct devices) and its bearer credential `<deviceId>.<secret>`. The server keeps only the
 * credential's SHA-256.
 */
export function newDeviceCredential(): { deviceId: string; credential: string } {
  const deviceId = `dev_${randomHex(16)}`;
  return { deviceId, credential: `${deviceId}.${randomBase64Url(32)}` };
}

/** `dev_<32 hex>.<43 base64url>`: the shape every credential this server issues has. */
const CREDENTIAL_PATTERN = /^(dev_[0-9a-f]{32})\.[A-Za-z0-9_-]{43}$/;

/**
 * Authenticates a device from its `Authorization` header value. Returns the device id, or null
 * for a missing or malformed header, an unknown device or a wrong secret — the caller answers all
 * of those alike, so a prober learns nothing about which device ids exist.
 */
export async function authenticateDevice(store: Store, authorization: string | undefined): Promise<string | null> {
  const credential = bearerToken(authorization);
  const deviceId = credential === null ? undefined : CREDENTIAL_PATTERN.exec(credential)?.[1];
  if (credential === null || deviceId === undefined) return null;
  const storedHash = await store.deviceCredentialHash(deviceId);
  // Compare against a dummy for an unknown device too, so both paths cost the same.
  const matches = secretMatchesHash(credential, storedHash ?? UNKNOWN_DEVICE_HASH);
  return matches && storedHash !== null ? deviceId : null;
}

const UNKNOWN_DEVICE_HASH = sha256Hex('no such device');

/** The token of an `Authorization: Bearer <token>` header, or null. */
export function bearerToken(authorization: string | undefined): string | null {
  const match = /^Bearer ([\x21-\x7e]{1,512})$/.exec(authorization ?? '');
  return match?.[1] ?? null;
}
