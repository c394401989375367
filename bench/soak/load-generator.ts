import { now } from './clock.js';
import { grpcSender } from './grpc-sender.js';
import { Hist } from './histogram.js';
import { httpsSender } from './https-sender.js';
import type { WorkerMessage, WorkerStart } from './load-protocol.js';
import { prng } from './request-mix.js';
import type { LiveBucket, SendContext, Sender } from './sender.js';

/** Messages from the parent, queued from the start so none is missed while the worker sets up. */
const inbox: unknown[] = [];
let delivered: ((m: unknown) => void) | null = null;
function nextMessage(): Promise<unknown> {
  const m = inbox.shift();
  if (m !== undefined) return Promise.resolve(m);
  return new Promise((resolve) => (delivered = resolve));
}

/** Sends a message to the parent; `then` runs once it has been handed over. */
const tell = (m: WorkerMessage, then?: () => void): void => {
  if (then) process.send!(m, then);
  else process.send!(m);
};

function newBucket(index: number): LiveBucket {
  return { index, sent: 0, answered: 0, ok: 0, rejected: {}, errors: 0, errorKinds: {}, hist: [], lagMaxMs: 0, lateSends: 0, h: new Hist() };
}

/**
 * The open-loop load generator, run in a child process of its own (the
 * entry script with --worker): sends request i at t0 + i/rate whether or not
 * earlier ones were answered, times each from that scheduled instant, and
 * reports a bucket of counts and latencies every --bucket-seconds.
 */
export async function runLoadGenerator(): Promise<void> {
  process.on('message', (m) => {
    if (delivered) { const d = delivered; delivered = null; d(m); } else inbox.push(m);
  });
  tell({ type: 'listening' });
  const start = (await nextMessage()) as WorkerStart;
  const interval = 1000 / start.rate;
  let bucket = newBucket(0);
  let inflight = 0;

  // Errors are counted by kind (no per-request detail in the key, so kinds stay few); one example of each is kept.
  const examples = new Map<string, string>();
  const error = (kind: string, example = ''): void => {
    bucket.errors++;
    const k = kind.slice(0, 160);
    bucket.errorKinds[k] = (bucket.errorKinds[k] ?? 0) + 1;
    if (!examples.has(k) && examples.size < 50) {
      examples.set(k, example);
      if (example) tell({ type: 'example', kind: k, example: example.slice(0, 300) });
    }
  };

  // Exactly missShare of the requests are distinct, evenly spread (a steady trickle).
  let owed = 0;
  const isDistinct = (): boolean => {
    owed += start.missShare;
    if (owed >= 1) { owed -= 1; return true; }
    return false;
  };

  const ctx: SendContext = { start, random: prng(0x5eed), isDistinct, bucket: () => bucket, error, settled: () => { inflight--; } };
  const sender: Sender = start.kind === 'grpc' ? await grpcSender(ctx) : httpsSender(ctx);
  tell({ type: 'ready' });
  start.t0 = ((await nextMessage()) as { t0: number }).t0;
  const end = start.t0 + start.durationMs;

  // Buckets close on the clock (an answer counts in the bucket in which it arrives).
  const closeBucket = (): void => {
    const { h, ...b } = bucket;
    tell({ type: 'bucket', bucket: { ...b, hist: h.toJSON() } });
    bucket = newBucket(b.index + 1);
  };
  const buckets = Math.ceil(start.durationMs / start.bucketMs);
  const bucketTimer = (k: number): void => {
    if (k >= buckets) return; // the last one closes after the drain
    setTimeout(() => { closeBucket(); bucketTimer(k + 1); }, Math.max(0, start.t0 + k * start.bucketMs - now()));
  };
  bucketTimer(1);

  let i = 0;
  await new Promise<void>((resolve) => {
    const pump = (): void => {
      const t = now();
      for (let next = start.t0 + i * interval; next <= t && next < end; next = start.t0 + ++i * interval) {
        const lag = t - next;
        if (lag > bucket.lagMaxMs) bucket.lagMaxMs = lag;
        if (lag > 5) bucket.lateSends++;
        bucket.sent++;
        inflight++;
        sender.send(next);
      }
      const next = start.t0 + i * interval;
      if (next >= end) return resolve();
      setTimeout(pump, Math.max(0, next - now() - 0.5));
    };
    setTimeout(pump, Math.max(0, start.t0 - now()));
  });
  // Drain: answers still in flight count in the last bucket (they time out on their own).
  const drainUntil = end + start.timeoutMs + 1000;
  while (inflight > 0 && now() < drainUntil) await new Promise((res) => setTimeout(res, 20));
  if (inflight > 0) bucket.errorKinds[`${inflight} requests unanswered at exit`] = inflight;
  bucket.errors += inflight;
  closeBucket();
  sender.close();
  tell({ type: 'done' }, () => process.exit(0));
}
