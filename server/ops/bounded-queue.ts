/**
 * A FIFO of byte buffers bounded by count and by total bytes. Pushing past either bound drops the
 * OLDEST items (a SIEM wants the newest events when it comes back) and counts them. O(1) per
 * push and shift (a ring buffer; `Array#shift` would copy the whole queue each time).
 */
export class BoundedQueue {
  private items: (Buffer | undefined)[];
  private head = 0;
  private size = 0;
  private totalBytes = 0;
  private droppedCount = 0;

  constructor(
    readonly maxItems: number,
    readonly maxBytes: number,
  ) {
    if (!(maxItems >= 1) || !(maxBytes >= 1)) throw new RangeError('queue bounds must be positive');
    this.items = new Array<Buffer | undefined>(Math.min(maxItems, 1024));
  }

  get length(): number {
    return this.size;
  }

  get bytes(): number {
    return this.totalBytes;
  }

  /** Items dropped since creation to make room. */
  get dropped(): number {
    return this.droppedCount;
  }

  /** Appends `item`, dropping the oldest items while a bound is exceeded. An item larger than maxBytes alone is dropped itself. */
  push(item: Buffer): void {
    if (item.length > this.maxBytes) {
      this.droppedCount += 1;
      return;
    }
    while (this.size >= this.maxItems || this.totalBytes + item.length > this.maxBytes) {
      this.shift();
      this.droppedCount += 1;
    }
    if (this.size === this.items.length) this.grow();
    this.items[(this.head + this.size) % this.items.length] = item;
    this.size += 1;
    this.totalBytes += item.length;
  }

  /** Puts items taken earlier back at the front, oldest first, as far as the bounds allow (the rest count as dropped). */
  unshiftAll(batch: readonly Buffer[]): void {
    for (let i = batch.length - 1; i >= 0; i -= 1) {
      const item = batch[i] as Buffer;
      if (this.size >= this.maxItems || this.totalBytes + item.length > this.maxBytes) {
        // No room at the front: these are older than everything queued, so they are the ones to drop.
        this.droppedCount += i + 1;
        return;
      }
      if (this.size === this.items.length) this.grow();
      this.head = (this.head - 1 + this.items.length) % this.items.length;
      this.items[this.head] = item;
      this.size += 1;
      this.totalBytes += item.length;
    }
  }

  shift(): Buffer | undefined {
    if (this.size === 0) return undefined;
    const item = this.items[this.head];
    this.items[this.head] = undefined;
    this.head = (this.head + 1) % this.items.length;
    this.size -= 1;
    this.totalBytes -= item?.length ?? 0;
    return item;
  }

  /** Up to `maxItems` items and about `maxBytes` bytes (at least one item when not empty), oldest first. */
  take(maxItems: number, maxBytes = Infinity): Buffer[] {
    const taken: Buffer[] = [];
    let bytes = 0;
    while (this.size > 0 && taken.length < maxItems) {
      const next = this.items[this.head] as Buffer;
      if (taken.length > 0 && bytes + next.length > maxBytes) break;
      taken.push(this.shift() as Buffer);
      bytes += next.length;
    }
    return taken;
  }

  private grow(): void {
    const capacity = Math.min(this.maxItems, this.items.length * 2);
    const grown = new Array<Buffer | undefined>(capacity);
    for (let i = 0; i < this.size; i += 1) grown[i] = this.items[(this.head + i) % this.items.length];
    this.items = grown;
    this.head = 0;
  }
}
