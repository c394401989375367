/**
 * What the bench and its load generator (a child process, over IPC) say to
 * each other. Parent -> generator: a WorkerStart, then { t0 } once the
 * generator is ready. Generator -> parent: 'listening', 'ready', one
 * 'bucket' per --bucket-seconds, an 'example' of each new error kind, 'done'.
 */

export interface WorkerStart {
  kind: 'grpc' | 'https';
  port: number;
  rate: number;
  t0: number;
  durationMs: number;
  bucketMs: number;
  timeoutMs: number;
  missShare: number;
  /** https: client certificates by identity name. */
  pki?: { ca: string; clients: Record<string, { cert: string; key: string }> };
}

export interface BucketReport {
  index: number;
  sent: number;
  answered: number;
  /** Answers that were correct and the thing measured: allow/deny as expected (server), 2xx (Envoy). */
  ok: number;
  /** Correct answers that turn the caller away: denies (server); 403 and 429 (Envoy), by status. */
  rejected: Record<string, number>;
  errors: number;
  errorKinds: Record<string, number>;
  hist: Array<[number, number]>;
  /** How late the generator sent, in ms after the scheduled instant: max, and sends more than 5 ms late. */
  lagMaxMs: number;
  lateSends: number;
}

export type WorkerMessage =
  | { type: 'listening' }
  | { type: 'ready' }
  | { type: 'bucket'; bucket: BucketReport }
  | { type: 'example'; kind: string; example: string }
  | { type: 'done' };
