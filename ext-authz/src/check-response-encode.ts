import type { CheckResponse } from './check-response.js';

/*
 * CheckResponse → protobuf bytes, for exactly the responses
 * toCheckResponse builds, written by hand: protobufjs (through
 * @grpc/proto-loader) converts every object with fromObject before encoding,
 * which cost 6–13 µs per response, more than the policy cache and the
 * request's decoding together. Same fields, same order, same bytes as
 * protobufjs (test/ext-authz/check-response-encode.test.ts compares them).
 *
 * The writer fills a scratch buffer from the end towards the start, so a
 * message's length is known when its prefix is written and no sizing pass
 * is needed; a response that does not fit is left to protobufjs.
 */

// Field numbers (envoy/service/auth/v3/external_auth.proto, config/core/v3/base.proto, google/rpc, google/protobuf).
const CHECK = { status: 1, denied: 2, ok: 3, metadata: 4 } as const;
const STATUS = { code: 1, message: 2 } as const;
const DENIED = { status: 1, headers: 2, body: 3 } as const;
const OK = { headers: 2, headersToRemove: 5 } as const;
const OPTION = { header: 1, append: 2 } as const;
const HEADER = { key: 1, value: 2 } as const;
const VALUE = { null: 1, string: 3, bool: 4 } as const;
const VARINT = 0;
const LEN = 2;

const SCRATCH_BYTES = 16 * 1024;

class TooBig extends Error {}

class ReverseWriter {
  readonly buf = Buffer.allocUnsafe(SCRATCH_BYTES);
  pos = SCRATCH_BYTES;

  private room(n: number): void {
    if (this.pos < n) throw new TooBig();
  }

  varint(n: number): void {
    // Values here are lengths, codes and tags: below 2^31, never negative.
    let size = 1;
    for (let v = n; v >= 0x80; v >>>= 7) size++;
    this.room(size);
    this.pos -= size;
    let i = this.pos;
    for (; n >= 0x80; n >>>= 7) this.buf[i++] = (n & 0x7f) | 0x80;
    this.buf[i] = n;
  }

  tag(field: number, wireType: number): void {
    this.varint((field << 3) | wireType);
  }

  /** A length-delimited field whose content `write` has just put before `end`. */
  close(field: number, end: number): void {
    this.varint(end - this.pos);
    this.tag(field, LEN);
  }

  string(field: number, s: string): void {
    const len = Buffer.byteLength(s, 'utf8');
    this.room(len);
    this.pos -= len;
    this.buf.write(s, this.pos, len, 'utf8');
    this.varint(len);
    this.tag(field, LEN);
  }

  int(field: number, n: number): void {
    this.varint(n);
    this.tag(field, VARINT);
  }
}

type Header = { header: { key: string; value: string }; append: { value: false } };
type StructValue = CheckResponse['dynamic_metadata']['fields'][string];

function headerOption(w: ReverseWriter, field: number, h: Header): void {
  const end = w.pos;
  // append: BoolValue { value: false }, written as protobufjs writes a field that is set.
  const appendEnd = w.pos;
  w.int(1, h.append.value ? 1 : 0);
  w.close(OPTION.append, appendEnd);
  const headerEnd = w.pos;
  w.string(HEADER.value, h.header.value);
  w.string(HEADER.key, h.header.key);
  w.close(OPTION.header, headerEnd);
  w.close(field, end);
}

function headers(w: ReverseWriter, field: number, list: readonly Header[]): void {
  for (let i = list.length - 1; i >= 0; i--) headerOption(w, field, list[i]!);
}

function value(w: ReverseWriter, v: StructValue): void {
  if ('stringValue' in v) w.string(VALUE.string, v.stringValue);
  else if ('boolValue' in v) w.int(VALUE.bool, v.boolValue ? 1 : 0);
  else w.int(VALUE.null, 0);
}

function metadata(w: ReverseWriter, fields: Record<string, StructValue>): void {
  const end = w.pos;
  const keys = Object.keys(fields);
  for (let i = keys.length - 1; i >= 0; i--) {
    const entryEnd = w.pos;
    const valueEnd = w.pos;
    value(w, fields[keys[i]!]!);
    w.close(2, valueEnd);
    w.string(1, keys[i]!);
    w.close(1, entryEnd);
  }
  w.close(CHECK.metadata, end);
}

function write(w: ReverseWriter, r: CheckResponse): void {
  metadata(w, r.dynamic_metadata.fields);
  if (r.ok_response !== undefined) {
    const end = w.pos;
    const remove = r.ok_response.headers_to_remove;
    for (let i = remove.length - 1; i >= 0; i--) w.string(OK.headersToRemove, remove[i]!);
    headers(w, OK.headers, r.ok_response.headers);
    w.close(CHECK.ok, end);
  }
  if (r.denied_response !== undefined) {
    const d = r.denied_response;
    const end = w.pos;
    w.string(DENIED.body, d.body);
    headers(w, DENIED.headers, d.headers);
    const statusEnd = w.pos;
    w.int(1, d.status.code);
    w.close(DENIED.status, statusEnd);
    w.close(CHECK.denied, end);
  }
  const statusEnd = w.pos;
  // Both written even when zero or empty, as protobufjs writes every field that is set.
  w.string(STATUS.message, r.status.message);
  w.int(STATUS.code, r.status.code);
  w.close(CHECK.status, statusEnd);
}

/**
 * An encoder for CheckResponses: hand-written for what fits the scratch
 * buffer, `fallback` (protobufjs) for anything larger. One per server:
 * the scratch buffer is reused, and the bytes returned are a copy.
 */
export function checkResponseEncoder(fallback: (r: CheckResponse) => Buffer): (r: CheckResponse) => Buffer {
  const w = new ReverseWriter();
  return (r) => {
    w.pos = SCRATCH_BYTES;
    try {
      write(w, r);
    } catch (err) {
      if (err instanceof TooBig) return fallback(r);
      throw err;
    }
    return Buffer.from(w.buf.subarray(w.pos));
  };
}
