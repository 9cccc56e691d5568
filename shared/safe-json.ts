import { err, ok, type Result } from './result.js';

/**
 * JSON.parse for untrusted text, refusing prototype-poisoning keys (`__proto__`, and `constructor`
 * holding a `prototype`), as fastify's secure-json-parse does on the server. Without this, a
 * `__proto__` member survives JSON.parse as an own key and then, copied by a schema library into a
 * new object, silently becomes that object's prototype instead of data.
 */
export function parseUntrustedJson(text: string): Result<unknown, 'invalid-json' | 'forbidden-key'> {
  const found: { key: string | null } = { key: null };
  let value: unknown;
  try {
    value = JSON.parse(text, function reviver(key: string, item: unknown) {
      if (key === '__proto__' || (key === 'constructor' && typeof item === 'object' && item !== null && 'prototype' in item)) {
        found.key ??= key;
      }
      return item;
    });
  } catch {
    return err('invalid-json', 'not valid JSON');
  }
  if (found.key !== null) return err('forbidden-key', `the key "${found.key}" is not allowed`);
  return ok(value);
}
