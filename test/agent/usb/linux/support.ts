import { afterEach } from 'vitest';
import { FakeSysfs, type FakeBusOptions } from '../../../fakes/fake-sysfs.js';

/** A fresh FakeSysfs per call, removed after the test. */
export function useFakeSysfs(): (buses?: readonly FakeBusOptions[]) => Promise<FakeSysfs> {
  const made: FakeSysfs[] = [];
  afterEach(async () => {
    await Promise.all(made.splice(0).map((sysfs) => sysfs.dispose()));
  });
  return async (buses) => {
    const sysfs = await FakeSysfs.create(buses);
    made.push(sysfs);
    return sysfs;
  };
}
