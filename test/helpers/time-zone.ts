import { afterAll, beforeAll } from 'vitest';

/** Runs this file's tests with `process.env.TZ = zone` (Node formats local dates in it), restored after. */
export function useTimeZone(zone: string): void {
  let saved: string | undefined;
  beforeAll(() => {
    saved = process.env.TZ;
    process.env.TZ = zone;
  });
  afterAll(() => {
    if (saved === undefined) delete process.env.TZ;
    else process.env.TZ = saved;
  });
}
