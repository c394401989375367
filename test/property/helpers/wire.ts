/**
 * A small protobuf wire-format writer, so tests can build CheckRequest bytes
 * that no well-behaved encoder would: wrong wire types on known field
 * numbers, lying length prefixes, deep nesting, strings that are not UTF-8.
 * Field numbers are Envoy's (the same ones test/ext-authz/proto.test.ts pins).
 */

export const WIRE = { varint: 0, fixed64: 1, len: 2, startGroup: 3, endGroup: 4, fixed32: 5 } as const;

/** A field as written: a nested message, a length-delimited blob (string or bytes), a varint, or bytes written as they are. */
export type WireNode =
  | { readonly field: number; readonly kind: 'message'; readonly children: readonly WireNode[] }
  | { readonly field: number; readonly kind: 'string'; readonly value: Uint8Array }
  | { readonly field: number; readonly kind: 'varint'; readonly value: bigint }
  | { readonly field: number; readonly kind: 'raw'; readonly bytes: Uint8Array };

export function varint(n: bigint | number): number[] {
  let v = BigInt(n);
  const out: number[] = [];
  do {
    let b = Number(v & 0x7fn);
    v >>= 7n;
    if (v > 0n) b |= 0x80;
    out.push(b);
  } while (v > 0n);
  return out;
}

export function tag(field: number, wireType: number): number[] {
  return varint((BigInt(field) << 3n) | BigInt(wireType));
}

export function encode(nodes: readonly WireNode[]): Uint8Array {
  const chunks: Uint8Array[] = [];
  for (const n of nodes) {
    switch (n.kind) {
      case 'message': {
        const body = encode(n.children);
        chunks.push(Uint8Array.from([...tag(n.field, WIRE.len), ...varint(body.length)]), body);
        break;
      }
      case 'string':
        chunks.push(Uint8Array.from([...tag(n.field, WIRE.len), ...varint(n.value.length)]), n.value);
        break;
      case 'varint':
        chunks.push(Uint8Array.from([...tag(n.field, WIRE.varint), ...varint(n.value)]));
        break;
      case 'raw':
        chunks.push(n.bytes);
        break;
    }
  }
  return Buffer.concat(chunks);
}

const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);
const str = (field: number, s: string): WireNode => ({ field, kind: 'string', value: utf8(s) });
const msg = (field: number, children: WireNode[]): WireNode => ({ field, kind: 'message', children });

export interface WireRequest {
  readonly principal: string | undefined;
  readonly http: { readonly method: string; readonly path: string; readonly host: string } | null;
}

/**
 * A CheckRequest as Envoy's HTTP ext_authz filter encodes it: source and
 * destination peers, and an HTTP request with id, method, headers, path,
 * host and protocol.
 */
export function checkRequestTree(req: WireRequest): WireNode[] {
  const peer = (principal: string | undefined): WireNode[] => (principal === undefined ? [] : [str(4, principal)]);
  const attributes: WireNode[] = [msg(1, peer(req.principal)), msg(2, peer('spiffe://cluster.local/ns/ml/sa/model'))];
  if (req.http !== null) {
    const { method, path, host } = req.http;
    const header = (k: string, v: string): WireNode => msg(3, [str(1, k), str(2, v)]);
    attributes.push(
      msg(4, [
        msg(2, [str(1, 'req-1'), str(2, method), header(':path', path), header(':method', method), str(4, path), str(5, host), str(10, 'HTTP/1.1')]),
      ]),
    );
  }
  return [msg(1, attributes)];
}

/** Every node of a tree in depth-first order, with the child indexes that reach it and the field numbers on the way. */
export function nodesOf(tree: readonly WireNode[], at: number[] = [], fieldsAt: number[] = []): Array<{ node: WireNode; path: number[]; fields: number[] }> {
  const out: Array<{ node: WireNode; path: number[]; fields: number[] }> = [];
  tree.forEach((node, i) => {
    const path = [...at, i];
    const fields = [...fieldsAt, node.field];
    out.push({ node, path, fields });
    if (node.kind === 'message') out.push(...nodesOf(node.children, path, fields));
  });
  return out;
}

/** The tree with the node at `path` replaced. */
export function replaceAt(tree: readonly WireNode[], path: readonly number[], replacement: WireNode): WireNode[] {
  const [i, ...rest] = path;
  return tree.map((node, k) => {
    if (k !== i) return node;
    if (rest.length === 0) return replacement;
    if (node.kind !== 'message') throw new Error('path goes through a leaf');
    return { ...node, children: replaceAt(node.children, rest, replacement) };
  });
}

/**
 * A chain of `depth` google.protobuf.Struct values nested in one another
 * (Struct.fields["k"] = Value{struct_value: Struct{...}}), encoded as
 * AttributeContext.metadata_context (Metadata.filter_metadata["f"]).
 * Written from the inside out in linear time.
 */
export function deepStructMetadata(depth: number): WireNode {
  // Per level, outermost first: Struct.fields entry {key "k", value Value{struct_value = inner}}.
  const prefixes: number[][] = [];
  let innerLength = 0; // the innermost Struct is empty
  for (let d = 0; d < depth; d++) {
    // Value { 5: Struct(inner) }
    const valueLength = tag(5, WIRE.len).length + varint(innerLength).length + innerLength;
    // map entry { 1: "k", 2: Value }
    const entryLength = 3 + tag(2, WIRE.len).length + varint(valueLength).length + valueLength;
    // Struct { 1: entry }
    const structLength = tag(1, WIRE.len).length + varint(entryLength).length + entryLength;
    prefixes.push([...tag(1, WIRE.len), ...varint(entryLength), ...tag(1, WIRE.len), 1, 0x6b, ...tag(2, WIRE.len), ...varint(valueLength), ...tag(5, WIRE.len), ...varint(innerLength)]);
    innerLength = structLength;
  }
  const struct = new Uint8Array(innerLength);
  let o = 0;
  for (let d = prefixes.length - 1; d >= 0; d--) {
    struct.set(prefixes[d]!, o);
    o += prefixes[d]!.length;
  }
  // Metadata { 1: filter_metadata entry { 1: "f", 2: Struct } }
  const entry = [...tag(1, WIRE.len), 1, 0x66, ...tag(2, WIRE.len), ...varint(struct.length)];
  const metadata = [...tag(1, WIRE.len), ...varint(entry.length + struct.length), ...entry];
  const bytes = new Uint8Array(tag(11, WIRE.len).length + varint(metadata.length + struct.length).length + metadata.length + struct.length);
  bytes.set([...tag(11, WIRE.len), ...varint(metadata.length + struct.length), ...metadata], 0);
  bytes.set(struct, bytes.length - struct.length);
  return { field: 11, kind: 'raw', bytes };
}
