// Context model: one RootContext per plugin configuration (parent id 0), one
// HttpContext per stream, created by its root. Filters subclass and override
// only the callbacks they need; the defaults let traffic through untouched.
import { Action } from "./status";

export class HttpContext {
  /** Mutable so a filter may recycle finished contexts for new streams. */
  constructor(public id: u32) {}
  onRequestHeaders(headerCount: u32, endOfStream: bool): u32 { return Action.CONTINUE; }
  onRequestBody(bodySize: u32, endOfStream: bool): u32 { return Action.CONTINUE; }
  onResponseHeaders(headerCount: u32, endOfStream: bool): u32 { return Action.CONTINUE; }
  onResponseBody(bodySize: u32, endOfStream: bool): u32 { return Action.CONTINUE; }
  /** The stream is over (completed, reset or answered locally). */
  onDone(): void {}
}

export class RootContext {
  constructor(readonly id: u32) {}
  /** Parse and validate once; false makes Envoy reject the configuration. */
  onConfigure(configuration: string): bool { return true; }
  onTick(): void {}
  /** Null when the root is not configured: the stream then passes untouched by this filter. */
  newHttpContext(id: u32): HttpContext | null { return null; }
}

export type RootFactory = (id: u32) => RootContext;

// Registration is a plain global store at module top level; no host call may
// happen there (Envoy restricts host calls while the module starts).
let rootFactory: RootFactory | null = null;

export function registerRoot(factory: RootFactory): void {
  rootFactory = factory;
}

export const roots = new Map<u32, RootContext>();
export const streams = new Map<u32, HttpContext>();

export function createContext(id: u32, parentId: u32): void {
  if (parentId == 0) {
    const factory = rootFactory;
    if (factory) roots.set(id, factory(id));
    return;
  }
  if (!roots.has(parentId)) return;
  const stream = roots.get(parentId).newHttpContext(id);
  if (stream) streams.set(id, stream);
}
