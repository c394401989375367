/**
 * A small in-process proxy-wasm (ABI 0.2.1) host on Node's WebAssembly, used to
 * drive the BUILT filter modules. It reproduces Envoy where a filter's
 * behaviour depends on it:
 *  - shared data: one store per process (pass the same SharedData to several
 *    hosts to play several worker VMs); set on a missing key always inserts,
 *    cas 0 always overwrites, any other cas must equal the current one
 *    (proxy-wasm-cpp-host shared_data.cc);
 *  - properties: paths are segments joined by NUL, and a dotted single
 *    segment is NOT split (Envoy would look it up as filter state);
 *  - metric ids: Envoy's first counter id is 0;
 *  - start-up: while the module's start function runs only proxy_log may be
 *    called (Envoy traps on any other host call there);
 *  - local replies: the host records the reply and stops the stream whatever
 *    the callback returns;
 *  - header maps are reachable only in their own callback (Envoy drops its
 *    pointer to them once the callback continues).
 * Anything the module imports that this host does not implement fails
 * instantiation, so a new import cannot slip past the tests.
 */
import { readFileSync } from 'node:fs';

export const Status = { OK: 0, NOT_FOUND: 1, BAD_ARGUMENT: 2, CAS_MISMATCH: 8 } as const;
export const MapType = { REQUEST_HEADERS: 0, REQUEST_TRAILERS: 1, RESPONSE_HEADERS: 2, RESPONSE_TRAILERS: 3 } as const;

export type Headers = Array<[string, string]>;

export class SharedData {
  private readonly map = new Map<string, { value: Uint8Array; cas: number }>();
  private nextCas = 1;
  /** Called before each set; lets a test play another worker writing in between. */
  beforeSet: ((key: string) => void) | null = null;

  get(key: string): { value: Uint8Array; cas: number } | undefined {
    return this.map.get(key);
  }

  set(key: string, value: Uint8Array, cas: number): number {
    this.beforeSet?.(key);
    const cur = this.map.get(key);
    if (cur && cas !== 0 && cas !== cur.cas) return Status.CAS_MISMATCH;
    this.map.set(key, { value: value.slice(), cas: this.allocCas() });
    return Status.OK;
  }

  keys(): string[] {
    return [...this.map.keys()];
  }

  private allocCas(): number {
    const c = this.nextCas;
    this.nextCas = (this.nextCas + 1) >>> 0 || 1;
    return c;
  }
}

export class Metrics {
  readonly byName = new Map<string, number>();
  readonly names: string[] = [];
  define(name: string): number {
    let idx = this.names.indexOf(name);
    if (idx < 0) {
      idx = this.names.length;
      this.names.push(name);
      this.byName.set(name, 0);
    }
    return idx * 4; // Envoy: counter type in the low bits (0), so the first counter is id 0
  }
  increment(id: number, delta: bigint): number {
    const name = this.names[id / 4];
    if (name === undefined || id % 4 !== 0) return Status.NOT_FOUND;
    this.byName.set(name, (this.byName.get(name) ?? 0) + Number(delta));
    return Status.OK;
  }
  value(name: string): number {
    return this.byName.get(name) ?? 0;
  }
}

export interface LocalReply {
  status: number;
  details: string;
  body: string;
  headers: Headers;
  grpcStatus: number;
}

export interface Stream {
  id: number;
  requestHeaders: Headers;
  responseHeaders: Headers;
  properties: Map<string, string>;
  localReply: LocalReply | null;
  closed: number[];
  /** The raw action each headers/body callback returned, in order. */
  actions: number[];
  requestPaused: boolean;
  responsePaused: boolean;
  /**
   * What proxy_get_header_map_pairs hands over for the request headers in
   * place of their serialization: lets a test feed the module a malformed map.
   */
  rawRequestPairs?: Uint8Array;
  /** How many times the module fetched the whole request map, and single request headers. */
  requestPairsCalls: number;
  requestValueCalls: number;
}

export interface HostOptions {
  shared?: SharedData;
  metrics?: Metrics;
  /** Monotonic nanoseconds; tests move it, including backwards. */
  clock?: { now: bigint };
  pluginName?: string;
}

const NUL = '\0';
const enc = new TextEncoder();
const dec = new TextDecoder();

export function header(h: Headers, name: string): string | undefined {
  return h.find(([k]) => k === name)?.[1];
}

export class ProxyWasmHost {
  readonly shared: SharedData;
  readonly metrics: Metrics;
  readonly clock: { now: bigint };
  readonly logs: Array<{ level: number; message: string }> = [];
  readonly module: WebAssembly.Module;
  tickPeriodMs = 0;
  private readonly instance: WebAssembly.Instance;
  private readonly pluginName: string;
  private pluginConfig = new Uint8Array();
  private current: Stream | null = null;
  private callback = '';
  private starting = true;
  private nextId = 2;
  private readonly streams = new Map<number, Stream>();
  readonly rootId = 1;

  constructor(wasmPath: string, opts: HostOptions = {}) {
    this.shared = opts.shared ?? new SharedData();
    this.metrics = opts.metrics ?? new Metrics();
    this.clock = opts.clock ?? { now: 1_000_000_000_000n };
    this.pluginName = opts.pluginName ?? 'test_plugin';
    this.module = new WebAssembly.Module(readFileSync(wasmPath));
    const imports = this.imports();
    const provided: WebAssembly.Imports = {};
    for (const imp of WebAssembly.Module.imports(this.module)) {
      const fn = imports[imp.module]?.[imp.name];
      if (!fn) throw new Error(`module imports ${imp.module}.${imp.name}, which this host (and Envoy) does not provide`);
      (provided[imp.module] ??= {})[imp.name] = fn;
    }
    this.instance = new WebAssembly.Instance(this.module, provided);
    // Envoy calls _initialize (if exported) under the same start-up restriction.
    const init = this.instance.exports._initialize as (() => void) | undefined;
    init?.();
    this.starting = false;
  }

  // ---- driving the module ------------------------------------------------

  /** Creates the root context and delivers the plugin configuration; returns on_configure's verdict. */
  configure(config: unknown): boolean {
    this.pluginConfig = enc.encode(typeof config === 'string' ? config : JSON.stringify(config));
    this.call('proxy_on_context_create', this.rootId, 0);
    this.call('proxy_on_vm_start', this.rootId, 0);
    return this.call('proxy_on_configure', this.rootId, this.pluginConfig.length) !== 0;
  }

  tick(): void {
    this.call('proxy_on_tick', this.rootId);
  }

  newStream(requestHeaders: Headers, properties: Record<string, string> = {}): Stream {
    const s: Stream = {
      id: this.nextId++,
      requestHeaders: requestHeaders.map(([k, v]) => [k, v]),
      responseHeaders: [],
      properties: new Map(Object.entries(properties)),
      localReply: null,
      closed: [],
      actions: [],
      requestPaused: false,
      responsePaused: false,
      requestPairsCalls: 0,
      requestValueCalls: 0,
    };
    this.streams.set(s.id, s);
    this.call('proxy_on_context_create', s.id, this.rootId);
    return s;
  }

  requestHeaders(s: Stream, endOfStream: boolean): number {
    return this.streamCall(s, 'proxy_on_request_headers', s.requestHeaders.length, endOfStream ? 1 : 0);
  }

  requestBody(s: Stream, chunkBytes: number, endOfStream: boolean): number {
    return this.streamCall(s, 'proxy_on_request_body', chunkBytes, endOfStream ? 1 : 0);
  }

  responseHeaders(s: Stream, headers: Headers, endOfStream: boolean): number {
    s.responseHeaders = headers.map(([k, v]) => [k, v]);
    return this.streamCall(s, 'proxy_on_response_headers', s.responseHeaders.length, endOfStream ? 1 : 0);
  }

  responseBody(s: Stream, chunkBytes: number, endOfStream: boolean): number {
    return this.streamCall(s, 'proxy_on_response_body', chunkBytes, endOfStream ? 1 : 0);
  }

  /** Ends the stream the way Envoy does: on_done, on_log, on_delete. */
  finish(s: Stream): void {
    this.streamCall(s, 'proxy_on_done');
    this.streamCall(s, 'proxy_on_log');
    this.streamCall(s, 'proxy_on_delete');
    this.streams.delete(s.id);
  }

  /**
   * A whole request as Envoy would feed it: headers, then body chunks, stopping
   * as soon as the filter replies locally (Envoy stops the filter chain).
   */
  request(headers: Headers, chunks: number[] = [], properties: Record<string, string> = {}): Stream {
    const s = this.newStream(headers, properties);
    this.requestHeaders(s, chunks.length === 0);
    for (let i = 0; i < chunks.length && !s.localReply; i++) {
      this.requestBody(s, chunks[i] ?? 0, i === chunks.length - 1);
    }
    if (!s.localReply) this.responseHeaders(s, [[':status', '200']], true);
    this.finish(s);
    return s;
  }

  private streamCall(s: Stream, name: string, ...args: number[]): number {
    this.current = s;
    this.callback = name;
    try {
      const r = this.call(name, s.id, ...args);
      if (/_(headers|body)$/.test(name)) s.actions.push(r);
      if (name === 'proxy_on_request_headers') s.requestPaused = r !== 0;
      if (name === 'proxy_on_response_headers') s.responsePaused = r !== 0;
      return r;
    } finally {
      this.current = null;
      this.callback = '';
    }
  }

  private call(name: string, ...args: number[]): number {
    const fn = this.instance.exports[name] as ((...a: number[]) => number | undefined) | undefined;
    if (!fn) return 0;
    return fn(...args) ?? 0;
  }

  // ---- memory ------------------------------------------------------------

  private get mem(): DataView {
    return new DataView((this.instance.exports.memory as WebAssembly.Memory).buffer);
  }

  private bytes(ptr: number, len: number): Uint8Array {
    return new Uint8Array((this.instance.exports.memory as WebAssembly.Memory).buffer, ptr, len).slice();
  }

  private str(ptr: number, len: number): string {
    return dec.decode(this.bytes(ptr, len));
  }

  /** Copies `data` into module memory through its malloc (ownership passes to the module). */
  private give(data: Uint8Array, retPtr: number, retSize: number): number {
    const malloc = this.instance.exports.malloc as (n: number) => number;
    const p = malloc(data.length);
    if (p === 0 && data.length > 0) return Status.BAD_ARGUMENT;
    new Uint8Array((this.instance.exports.memory as WebAssembly.Memory).buffer, p, data.length).set(data);
    this.mem.setUint32(retPtr, p, true);
    this.mem.setUint32(retSize, data.length, true);
    return Status.OK;
  }

  private stream(): Stream {
    if (this.starting) throw new Error('host call during module start-up (Envoy: restricted_callback)');
    if (!this.current) throw new Error('stream host call outside a stream callback');
    return this.current;
  }

  /**
   * Envoy keeps a header map reachable only during its own callback (and
   * after it, only while that callback paused the stream); otherwise the map
   * is gone and the call returns NOT_FOUND.
   */
  private map(type: number): Headers | null {
    const s = this.stream();
    const cb = this.callback;
    if (type === MapType.REQUEST_HEADERS) return cb === 'proxy_on_request_headers' || s.requestPaused ? s.requestHeaders : null;
    if (type === MapType.RESPONSE_HEADERS) return cb === 'proxy_on_response_headers' || s.responsePaused ? s.responseHeaders : null;
    throw new Error(`header map ${type} not emulated`);
  }

  private restricted(name: string): void {
    if (this.starting) throw new Error(`${name} during module start-up (Envoy: restricted_callback)`);
  }

  // ---- host functions ------------------------------------------------------

  private imports(): Record<string, Record<string, (...a: never[]) => number>> {
    return {
      env: {
        proxy_log: (level: number, ptr: number, len: number) => {
          this.logs.push({ level, message: this.str(ptr, len) });
          return Status.OK;
        },
        proxy_get_buffer_bytes: (type: number, start: number, max: number, retPtr: number, retSize: number) => {
          this.restricted('proxy_get_buffer_bytes');
          if (type !== 7) return Status.NOT_FOUND;
          return this.give(this.pluginConfig.subarray(start, start + max), retPtr, retSize);
        },
        proxy_get_header_map_value: (type: number, kp: number, kl: number, retPtr: number, retSize: number) => {
          const m = this.map(type);
          if (!m) return Status.NOT_FOUND;
          if (type === MapType.REQUEST_HEADERS) this.stream().requestValueCalls++;
          const v = header(m, this.str(kp, kl));
          if (v === undefined) return Status.NOT_FOUND;
          return this.give(enc.encode(v), retPtr, retSize);
        },
        proxy_get_header_map_pairs: (type: number, retPtr: number, retSize: number) => {
          const m = this.map(type);
          if (!m) return Status.NOT_FOUND;
          const s = this.stream();
          if (type === MapType.REQUEST_HEADERS) {
            s.requestPairsCalls++;
            if (s.rawRequestPairs) return this.give(s.rawRequestPairs, retPtr, retSize);
          }
          return this.give(serializePairs(m), retPtr, retSize);
        },
        proxy_add_header_map_value: (type: number, kp: number, kl: number, vp: number, vl: number) => {
          const m = this.map(type);
          if (!m) return Status.NOT_FOUND;
          m.push([this.str(kp, kl), this.str(vp, vl)]);
          return Status.OK;
        },
        proxy_replace_header_map_value: (type: number, kp: number, kl: number, vp: number, vl: number) => {
          const m = this.map(type);
          if (!m) return Status.NOT_FOUND;
          const key = this.str(kp, kl);
          const rest = m.filter(([k]) => k !== key);
          m.length = 0;
          m.push(...rest, [key, this.str(vp, vl)]);
          return Status.OK;
        },
        proxy_send_local_response: (status: number, dp: number, dl: number, bp: number, bl: number, hp: number, hl: number, grpc: number) => {
          const s = this.stream();
          s.localReply = {
            status,
            details: this.str(dp, dl),
            body: this.str(bp, bl),
            headers: this.parsePairs(hp, hl),
            grpcStatus: grpc,
          };
          return Status.OK;
        },
        proxy_close_stream: (type: number) => {
          this.stream().closed.push(type);
          return Status.OK;
        },
        proxy_get_property: (pp: number, pl: number, retPtr: number, retSize: number) => {
          this.restricted('proxy_get_property');
          const path = this.str(pp, pl);
          if (path === 'plugin_name') return this.give(enc.encode(this.pluginName), retPtr, retSize);
          const v = this.current?.properties.get(path);
          if (v === undefined) return Status.NOT_FOUND;
          return this.give(enc.encode(v), retPtr, retSize);
        },
        proxy_get_shared_data: (kp: number, kl: number, retPtr: number, retSize: number, retCas: number) => {
          this.restricted('proxy_get_shared_data');
          const e = this.shared.get(this.str(kp, kl));
          if (!e) return Status.NOT_FOUND;
          this.mem.setUint32(retCas, e.cas, true);
          return this.give(e.value, retPtr, retSize);
        },
        proxy_set_shared_data: (kp: number, kl: number, vp: number, vl: number, cas: number) => {
          this.restricted('proxy_set_shared_data');
          return this.shared.set(this.str(kp, kl), this.bytes(vp, vl), cas >>> 0);
        },
        proxy_define_metric: (type: number, np: number, nl: number, retId: number) => {
          this.restricted('proxy_define_metric');
          if (type !== 0) return Status.BAD_ARGUMENT;
          this.mem.setUint32(retId, this.metrics.define(this.str(np, nl)), true);
          return Status.OK;
        },
        proxy_increment_metric: ((id: number, delta: bigint) => this.metrics.increment(id >>> 0, delta)) as (...a: never[]) => number,
        proxy_set_tick_period_milliseconds: (ms: number) => {
          this.restricted('proxy_set_tick_period_milliseconds');
          this.tickPeriodMs = ms;
          return Status.OK;
        },
      },
      wasi_snapshot_preview1: {
        clock_time_get: ((id: number, _precision: bigint, retPtr: number) => {
          if (id !== 0 && id !== 1) return 28; // EINVAL, as cpp-host for other clocks
          this.mem.setBigUint64(retPtr, this.clock.now, true);
          return 0;
        }) as (...a: never[]) => number,
      },
    };
  }

  private parsePairs(ptr: number, len: number): Headers {
    if (len === 0) return [];
    const m = this.mem;
    const n = m.getUint32(ptr, true);
    const out: Headers = [];
    let data = ptr + 4 + n * 8;
    for (let i = 0; i < n; i++) {
      const kl = m.getUint32(ptr + 4 + i * 8, true);
      const vl = m.getUint32(ptr + 8 + i * 8, true);
      const k = this.str(data, kl);
      data += kl;
      if (m.getUint8(data) !== 0) throw new Error('header key not NUL-terminated');
      data += 1;
      const v = this.str(data, vl);
      data += vl;
      if (m.getUint8(data) !== 0) throw new Error('header value not NUL-terminated');
      data += 1;
      out.push([k, v]);
    }
    if (data !== ptr + len) throw new Error(`serialized header map length ${len} does not match its content`);
    return out;
  }
}

/**
 * A header map serialized as Envoy hands it over (proxy_get_header_map_pairs):
 * u32 count, (u32 key length, u32 value length) per pair, then each key and
 * value followed by NUL; little-endian; an empty map is zero bytes.
 */
export function serializePairs(headers: Headers): Uint8Array {
  if (headers.length === 0) return new Uint8Array();
  const parts = headers.map(([k, v]) => [enc.encode(k), enc.encode(v)] as const);
  const size = parts.reduce((n, [k, v]) => n + k.length + v.length + 2, 4 + 8 * parts.length);
  const out = new Uint8Array(size);
  const view = new DataView(out.buffer);
  view.setUint32(0, parts.length, true);
  let at = 4 + 8 * parts.length;
  parts.forEach(([k, v], i) => {
    view.setUint32(4 + 8 * i, k.length, true);
    view.setUint32(8 + 8 * i, v.length, true);
    out.set(k, at);
    at += k.length + 1;
    out.set(v, at);
    at += v.length + 1;
  });
  return out;
}

export const PEER_URI_SAN = ['connection', 'uri_san_peer_certificate'].join(NUL);
