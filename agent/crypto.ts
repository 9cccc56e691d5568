import crypto from 'node:crypto';

/** SHA-256 of a UTF-8 string as lower-case hex, via Node's one-shot `crypto.hash` where present (faster: no Hash object per call). */
export const sha256Hex: (text: string) => string =
  typeof crypto.hash === 'function'
    ? (text) => crypto.hash('sha256', text, 'hex')
    : (text) => crypto.createHash('sha256').update(text).digest('hex');
