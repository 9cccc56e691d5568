/** A sleep that can be cut short: by `wake()` when the sleeper allows it, and always by `cancel()`. */
export class Sleeper {
  private timer: NodeJS.Timeout | null = null;
  private resolveCurrent: (() => void) | null = null;
  private wakeable = false;
  private cancelled = false;

  /** Sleeps `ms`; with `wakeable`, an earlier `wake()` ends it. Resolves at once after `cancel()`. */
  sleep(ms: number, wakeable: boolean): Promise<void> {
    if (this.cancelled) return Promise.resolve();
    return new Promise<void>((resolve) => {
      this.wakeable = wakeable;
      this.resolveCurrent = resolve;
      this.timer = setTimeout(() => this.finish(), Math.max(0, ms));
    });
  }

  /** Ends a wakeable sleep early (no effect on a back-off sleep). */
  wake(): void {
    if (this.wakeable) this.finish();
  }

  /** Ends any sleep now and every future one immediately. */
  cancel(): void {
    this.cancelled = true;
    this.finish();
  }

  get isCancelled(): boolean {
    return this.cancelled;
  }

  private finish(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const resolve = this.resolveCurrent;
    this.resolveCurrent = null;
    this.wakeable = false;
    resolve?.();
  }
}
