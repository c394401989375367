import { routedPath, type Backend, type BackendInfo } from './backends.js';
import type { RawReply } from './raw-http.js';

/** What one backend did with one target. */
export interface Outcome {
  /** 0: no response (see error). */
  readonly status: number;
  /** For a 200: the path the backend routed on, as it reported it. */
  readonly path?: string;
  readonly location?: string;
  /** x-infergate-reason, when Envoy answered for infergate. */
  readonly reason?: string;
  readonly error?: string;
}

export function outcome(b: Backend, reply: RawReply): Outcome {
  if (reply.status === 200) return { status: 200, path: routedPath(b.name, reply.body) };
  const out: { status: number; location?: string; reason?: string; error?: string } = { status: reply.status };
  if (reply.headers.location !== undefined) out.location = reply.headers.location;
  if (reply.headers['x-infergate-reason'] !== undefined) out.reason = reply.headers['x-infergate-reason'];
  if (reply.error !== undefined) out.error = reply.error;
  return out;
}

/** The fields of an infergate decision-log line this test reads. */
export interface Decision {
  readonly host: string | null;
  readonly path: string | null;
  readonly result: string;
  readonly reason: string;
}

/**
 * The resource a backend served, comparable with infergate's decoded path.
 * A raw-matching router (Express) runs its route literals over the escaped
 * path, so `/%61dmin` can never match a route written `/admin`; what it can
 * serve for that target is named by the target decoded once, which is what
 * is compared.
 */
export function served(b: BackendInfo, path: string): string {
  if (b.routesOn === 'decoded') return path;
  try {
    return decodeURIComponent(path);
  } catch {
    return path;
  }
}
