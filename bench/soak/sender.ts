import type { Hist } from './histogram.js';
import type { BucketReport, WorkerStart } from './load-protocol.js';

/** The bucket the load generator is filling now, with its latency histogram. */
export interface LiveBucket extends BucketReport { h: Hist }

/** What the load generator gives a sender: its start message, shared randomness and counters. */
export interface SendContext {
  start: WorkerStart;
  /** The generator's deterministic random sequence. */
  random: () => number;
  /** Whether the next request is a distinct one (exactly --miss-share of them, evenly spread). */
  isDistinct: () => boolean;
  /** The bucket open now (an answer counts in the bucket in which it arrives). */
  bucket: () => LiveBucket;
  /** Counts an unexpected answer or failure by kind, with one example of each kind. */
  error: (kind: string, example?: string) => void;
  /** One request fewer in flight (answered, failed or timed out). */
  settled: () => void;
}

/** Sends one request for the instant it was scheduled at, and times its answer from that instant. */
export interface Sender {
  send(scheduled: number): void;
  close(): void;
}
