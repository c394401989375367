// Counters. Every proxy_increment_metric is a V8↔host crossing, which is a
// large share of a cheap filter's per-request cost, so the per-request
// "allowed" count is batched in the VM and flushed every FLUSH_EVERY requests
// or on the root's tick (1 s): Envoy's stat lags by at most a second. Rare
// events (rejections, errors) go out immediately.
import { defineCounter, incrementCounterBy, setTickPeriod } from "./host";

const FLUSH_EVERY: i64 = 64;
export const TICK_MS: u32 = 1000;

export class Counter {
  readonly id: u32;
  constructor(name: string) { this.id = defineCounter(name); }
  inc(): void { incrementCounterBy(this.id, 1); }
}

export class BatchedCounter {
  readonly id: u32;
  private pending: i64 = 0;
  constructor(name: string) { this.id = defineCounter(name); }

  inc(): void {
    this.pending++;
    if (this.pending >= FLUSH_EVERY) this.flush();
  }

  flush(): void {
    if (this.pending == 0) return;
    incrementCounterBy(this.id, this.pending);
    this.pending = 0;
  }
}

/** The three counters every filter publishes as infergate.<filter>.{allowed,rejected,errors}. */
export class FilterMetrics {
  readonly allowed: BatchedCounter;
  readonly rejected: Counter;
  readonly errors: Counter;

  /** Call from onConfigure (host calls are not allowed at module start). */
  constructor(filter: string) {
    this.allowed = new BatchedCounter("infergate." + filter + ".allowed");
    this.rejected = new Counter("infergate." + filter + ".rejected");
    this.errors = new Counter("infergate." + filter + ".errors");
    setTickPeriod(TICK_MS);
  }
}
