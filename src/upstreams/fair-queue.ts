interface Entry<T> {
  readonly item: T;
  /** Cancelled or taken: skipped and dropped when it reaches the head of its lane. */
  done: boolean;
}

/** FIFO of one batch's waiting requests: an array with a moving head, compacted now and then. */
class Lane<T> {
  private entries: Entry<T>[] = [];
  private head = 0;

  push(entry: Entry<T>): void {
    this.entries.push(entry);
  }

  peek(): Entry<T> | undefined {
    while (this.head < this.entries.length && this.entries[this.head].done) this.head++;
    if (this.head > 1024 && this.head * 2 > this.entries.length) {
      this.entries = this.entries.slice(this.head);
      this.head = 0;
    }
    return this.entries[this.head];
  }

  shift(): void {
    this.head++;
  }
}

/**
 * Requests waiting for an upstream slot, handed out round-robin across tenants, then across
 * each tenant's batches, FIFO within a batch. A tenant with one small batch thus waits behind
 * at most one request per other tenant, whatever the size of their batches.
 */
export class FairQueue<T> {
  // Map iteration follows insertion order: a tenant (or batch) just served is re-inserted
  // at the back, which is the whole round-robin.
  private readonly tenants = new Map<string, Map<string, Lane<T>>>();
  private live = 0;

  get size(): number {
    return this.live;
  }

  /** Queues `item`; the returned function takes it out again (false if it was already taken). */
  push(tenant: string, batch: string, item: T): () => boolean {
    let batches = this.tenants.get(tenant);
    if (!batches) this.tenants.set(tenant, (batches = new Map()));
    let lane = batches.get(batch);
    if (!lane) batches.set(batch, (lane = new Lane()));
    const entry: Entry<T> = { item, done: false };
    lane.push(entry);
    this.live++;
    return () => {
      if (entry.done) return false;
      entry.done = true;
      this.live--;
      return true;
    };
  }

  /**
   * Takes the first request, in round-robin order, that `eligible` accepts. Only the head of
   * each batch is considered, so a batch's requests start in order.
   */
  take(eligible: (item: T) => boolean): T | undefined {
    for (const [tenant, batches] of this.tenants) {
      for (const [batch, lane] of batches) {
        const entry = lane.peek();
        if (!entry) {
          batches.delete(batch);
          continue;
        }
        if (!eligible(entry.item)) continue;
        lane.shift();
        entry.done = true;
        this.live--;
        batches.delete(batch);
        if (lane.peek()) batches.set(batch, lane);
        this.tenants.delete(tenant);
        if (batches.size > 0) this.tenants.set(tenant, batches);
        return entry.item;
      }
      if (batches.size === 0) this.tenants.delete(tenant);
    }
    return undefined;
  }
}
