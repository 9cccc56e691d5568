/**
 * Minimal strict UTF-8 for the `\xHH` escapes of the rule language. Hand-written because shared/ has
 * no TextEncoder/TextDecoder types (lib ES2022, no DOM, no Node).
 */

/** The UTF-8 bytes of one Unicode scalar value (`codePoint` must not be a surrogate). */
export function encodeCodePoint(codePoint: number): number[] {
  if (codePoint < 0x80) return [codePoint];
  if (codePoint < 0x800) return [0xc0 | (codePoint >> 6), 0x80 | (codePoint & 0x3f)];
  if (codePoint < 0x10000) {
    return [0xe0 | (codePoint >> 12), 0x80 | ((codePoint >> 6) & 0x3f), 0x80 | (codePoint & 0x3f)];
  }
  return [
    0xf0 | (codePoint >> 18),
    0x80 | ((codePoint >> 12) & 0x3f),
    0x80 | ((codePoint >> 6) & 0x3f),
    0x80 | (codePoint & 0x3f),
  ];
}

/**
 * Decodes bytes as strict UTF-8: overlong forms, surrogates, values above U+10FFFF and truncated
 * sequences give `null` instead of U+FFFD, so a rule never silently means something else.
 */
export function decodeUtf8(bytes: readonly number[]): string | null {
  let out = '';
  let i = 0;
  while (i < bytes.length) {
    const lead = bytes[i] ?? 0;
    let length: number;
    let codePoint: number;
    let minimum: number;
    if (lead < 0x80) {
      length = 1;
      codePoint = lead;
      minimum = 0;
    } else if (lead >= 0xc2 && lead <= 0xdf) {
      length = 2;
      codePoint = lead & 0x1f;
      minimum = 0x80;
    } else if (lead >= 0xe0 && lead <= 0xef) {
      length = 3;
      codePoint = lead & 0x0f;
      minimum = 0x800;
    } else if (lead >= 0xf0 && lead <= 0xf4) {
      length = 4;
      codePoint = lead & 0x07;
      minimum = 0x10000;
    } else {
      return null;
    }
    if (i + length > bytes.length) return null;
    for (let k = 1; k < length; k++) {
      const next = bytes[i + k] ?? 0;
      if ((next & 0xc0) !== 0x80) return null;
      codePoint = (codePoint << 6) | (next & 0x3f);
    }
    if (codePoint < minimum || codePoint > 0x10ffff || (codePoint >= 0xd800 && codePoint <= 0xdfff)) return null;
    out += String.fromCodePoint(codePoint);
    i += length;
  }
  return out;
}
