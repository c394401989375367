import type { Sent } from './load.js';

export interface Budget {
  /** Requests the limiter let through (HTTP 200). */
  readonly admitted: number;
  /** burst + rate × T, T = last send − first send. */
  readonly expected: number;
  /** The window, T, in seconds. */
  readonly seconds: number;
  /** How far above `expected` admitted may be: rate × (last reply − last send). */
  readonly over: number;
  /** How far below: one fractional token + rate × (first reply − first send + last send − last 429's send). */
  readonly under: number;
}

/**
 * What a token bucket (created full at its caller's first request, refilled
 * continuously) may have admitted from `sent`, bracketed by what the client
 * can measure. Each take happens between its request's send and its reply, so:
 *  - above: admitted ≤ burst + rate × (last reply − first send), since the
 *    first take is after the first send and the last take before the last reply;
 *  - below: at the last denied take the bucket held under one token, so if the
 *    load never paused long enough for it to fill (no refill lost at the cap),
 *    admitted > burst + rate × (that take − first take) − 1, where that take is
 *    after the last 429's send and the first take before the first reply.
 * Requires at least one 429 in `sent`.
 */
export function budget(sent: readonly Sent[], burst: number, perSecond: number): Budget {
  const limited = sent.filter((s) => s.status === 429);
  if (limited.length === 0) throw new Error('budget(): no request was rate limited, so the bucket was never drained');
  const firstSend = Math.min(...sent.map((s) => s.sentAt));
  const lastSend = Math.max(...sent.map((s) => s.sentAt));
  const firstReply = Math.min(...sent.map((s) => s.doneAt));
  const lastReply = Math.max(...sent.map((s) => s.doneAt));
  const lastDeniedSend = Math.max(...limited.map((s) => s.sentAt));
  const rate = perSecond / 1000; // tokens per ms
  return {
    admitted: sent.filter((s) => s.status === 200).length,
    expected: burst + rate * (lastSend - firstSend),
    seconds: (lastSend - firstSend) / 1000,
    over: rate * (lastReply - lastSend),
    under: 1 + rate * (firstReply - firstSend + lastSend - lastDeniedSend),
  };
}
