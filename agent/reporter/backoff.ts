/**
 * Exponential back-off with full jitter (AWS architecture blog, "Exponential Backoff And Jitter"):
 * after an outage, hundreds of agents must not retry in step and flatten the server the moment it
 * returns. Delay for attempt n (0-based) is uniform in [0, min(max, base · 2^n)].
 */
export class Backoff {
  private attempt = 0;

  constructor(
    private readonly baseMs: number,
    private readonly maxMs: number,
    private readonly random: () => number = Math.random,
  ) {
    if (!(baseMs > 0) || !(maxMs >= baseMs)) throw new RangeError(`bad back-off bounds: base ${baseMs}, max ${maxMs}`);
  }

  /** The next delay in ms; each call counts one more failure. */
  next(): number {
    const ceiling = Math.min(this.maxMs, this.baseMs * 2 ** Math.min(this.attempt, 30));
    this.attempt += 1;
    return Math.floor(this.random() * ceiling);
  }

  /** Failures since the last success. */
  get failures(): number {
    return this.attempt;
  }

  reset(): void {
    this.attempt = 0;
  }
}
