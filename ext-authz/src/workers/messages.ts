import type { Registry } from 'prom-client';
import type { PolicyContent } from '../policy-store.js';
import type { ServerOptions } from '../server.js';

/*
 * What the primary and its workers say to each other over the cluster's IPC
 * channel ("advanced" serialization: Buffers and bigints cross as they are).
 *
 * A reload is two-phase: `prepare` hands every worker the content the
 * primary has validated, each builds the policy beside the one in force and
 * answers `prepared`; only when all have, `commit` tells each to switch at
 * the same instant `at` (process.hrtime, CLOCK_MONOTONIC, the same clock in
 * every process of the machine). Until `at` every worker decides by the old
 * revision, from `at` on by the new one; a worker that reads the commit
 * only after `at` reports how late it was (`lateNs`), which is the window in
 * which two workers decided by different revisions.
 */

export type ToWorker =
  | { readonly t: 'init'; readonly slot: number; readonly opts: ServerOptions; readonly content: PolicyContent; readonly expectPort: number | null }
  | { readonly t: 'prepare'; readonly seq: number; readonly content: PolicyContent }
  | { readonly t: 'commit'; readonly seq: number; readonly at: bigint }
  | { readonly t: 'abort'; readonly seq: number }
  | { readonly t: 'metrics'; readonly seq: number }
  | { readonly t: 'drain'; readonly graceMs: number };

export type FromWorker =
  /** Listening for messages; waiting for `init`. */
  | { readonly t: 'hello' }
  | { readonly t: 'serving'; readonly port: number | null; readonly revision: string }
  /** Start-up failed (the message is one line for the operator); the worker exits. */
  | { readonly t: 'fatal'; readonly error: string }
  | { readonly t: 'prepared'; readonly seq: number }
  | { readonly t: 'prepare-failed'; readonly seq: number; readonly source: 'manifest' | 'bundle'; readonly error: string }
  | { readonly t: 'committed'; readonly seq: number; readonly revision: string; readonly lateNs: number }
  | { readonly t: 'metrics'; readonly seq: number; readonly metrics: MetricsJson }
  /** Whole decision log lines, newline-terminated, for the primary to write. */
  | { readonly t: 'log'; readonly text: string }
  | { readonly t: 'drained' };

/** One registry's metrics as prom-client's AggregatorRegistry.aggregate() takes them. */
export type MetricsJson = Awaited<ReturnType<Registry['getMetricsAsJSON']>>;

