import * as grpc from '@grpc/grpc-js';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CheckRequest } from '../../ext-authz/src/check-request.js';
import type { CheckResponse } from '../../ext-authz/src/check-response.js';
import { authorizationService } from '../../ext-authz/src/protos.js';
import { wellFormedRequestArb } from './helpers/grammar.js';
import { GATEWAY, MANIFEST, OPERATOR } from './helpers/manifest.js';
import { refDecide, type RefRequest } from './helpers/reference.js';
import { decide, outcomeOf, startServer, type RunningServer } from './helpers/server.js';
import { WIRE, checkRequestTree, deepStructMetadata, encode, nodesOf, replaceAt, tag, varint, type WireNode } from './helpers/wire.js';

const CHECK = '/envoy.service.auth.v3.Authorization/Check';

interface Case {
  readonly kind: string;
  readonly bytes: Uint8Array;
  /** Set when the bytes corrupt a field the decision reads: then nothing may be allowed, whatever they decode to. */
  readonly mustDeny: boolean;
}

// Bases that are allowed as sent, so any allow after corruption has to be justified by what the bytes decode to.
const KNOWN_ALLOW: RefRequest = { principal: GATEWAY, http: { method: 'POST', path: '/v1/models/bert:predict', host: 'model-serving.ml.svc.cluster.local' } };
const KNOWN_DENY: RefRequest = { principal: OPERATOR, http: { method: 'GET', path: '/admin/users', host: 'model-serving.ml.svc.cluster.local' } };
const baseArb: fc.Arbitrary<RefRequest> = fc.oneof(
  fc.constant(KNOWN_ALLOW),
  fc.constant<RefRequest>({ principal: OPERATOR, http: { method: 'GET', path: '/v1/models/llama', host: 'kserve.models.internal' } }),
  fc.constant<RefRequest>({ principal: 'spiffe://partner.example/ns/partner/sa/reader', http: { method: 'GET', path: '/v1/models/bert', host: 'a.b.models.internal' } }),
  fc.constant<RefRequest>({ principal: OPERATOR, http: null }),
  wellFormedRequestArb,
);

const baseBytesArb = baseArb.map((r) => encode(checkRequestTree(r)));

/** Byte sequences no UTF-8 decoder may accept: stray continuation, truncated, overlong (of "/" and NUL), surrogate, past U+10FFFF, 0xFE/0xFF. */
const INVALID_UTF8 = [[0xff], [0xfe], [0x80], [0xbf], [0xc3], [0xe2, 0x82], [0xc0, 0xaf], [0xc0, 0x80], [0xc1, 0xbf], [0xe0, 0x80, 0xaf], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80], [0xf8, 0x88, 0x80, 0x80, 0x80]];

/**
 * The string fields the decision reads, by field numbers from CheckRequest:
 * attributes.source.principal, and attributes.request.http method, path, host.
 */
const READ_FIELDS = ['1.1.4', '1.4.2.2', '1.4.2.4', '1.4.2.5'];

const randomBytesArb = fc.uint8Array({ maxLength: 300 }).map((bytes): Case => ({ kind: 'random bytes', bytes, mustDeny: false }));

const truncatedArb = fc.tuple(baseBytesArb, fc.nat()).map(([b, n]): Case => ({ kind: 'truncated', bytes: b.slice(0, n % b.length), mustDeny: false }));

const flippedArb = fc.tuple(baseBytesArb, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 })), { minLength: 1, maxLength: 4 })).map(([b, flips]): Case => {
  const bytes = Uint8Array.from(b);
  for (const [at, x] of flips) bytes[at % bytes.length]! ^= x;
  return { kind: 'flipped bytes', bytes, mustDeny: false };
});

/** A known field (any node of the tree) written with another wire type, including the invalid 6 and 7. */
const wrongWireTypeArb = fc
  .tuple(baseArb, fc.nat(), fc.constantFrom(WIRE.varint, WIRE.fixed64, WIRE.startGroup, WIRE.endGroup, WIRE.fixed32, 6, 7), fc.uint8Array({ minLength: 8, maxLength: 12 }))
  .map(([req, pick, wireType, filler]): Case => {
    const tree = checkRequestTree(req);
    const nodes = nodesOf(tree);
    const { node, path } = nodes[pick % nodes.length]!;
    let body: number[];
    if (wireType === WIRE.varint) body = varint(BigInt(filler[0]!) << 40n);
    else if (wireType === WIRE.fixed64) body = [...filler.slice(0, 8)];
    else if (wireType === WIRE.fixed32) body = [...filler.slice(0, 4)];
    else if (wireType === WIRE.startGroup) body = [...encode(node.kind === 'message' ? node.children : []), ...tag(node.field, WIRE.endGroup)];
    else body = [...filler];
    const bytes = Uint8Array.from([...tag(node.field, wireType), ...body]);
    return { kind: `wire type ${wireType} for field ${node.field}`, bytes: encode(replaceAt(tree, path, { field: node.field, kind: 'raw', bytes })), mustDeny: false };
  });

/** A length prefix far larger than what follows, on any length-delimited field; also an over-long varint. */
const hugeLengthArb = fc
  .tuple(baseArb, fc.nat(), fc.constantFrom<bigint | 'overlong'>(2n ** 28n, 2n ** 31n - 1n, 2n ** 32n, 2n ** 53n, 2n ** 63n, 2n ** 64n - 1n, 'overlong'))
  .map(([req, pick, length]): Case => {
    const tree = checkRequestTree(req);
    const nodes = nodesOf(tree).filter(({ node }) => node.kind === 'message' || node.kind === 'string');
    const { node, path } = nodes[pick % nodes.length]!;
    const prefix = length === 'overlong' ? Array(11).fill(0xff) : varint(length);
    const bytes = Uint8Array.from([...tag(node.field, WIRE.len), ...prefix, 0x0a, 0x00]);
    return { kind: `length ${String(length)} on field ${node.field}`, bytes: encode(replaceAt(tree, path, { field: node.field, kind: 'raw', bytes })), mustDeny: false };
  });

/** Groups nested up to 100k deep (closed or not), alone or after a valid request; and a deep chain of Structs in metadata_context. */
const deepGroupsArb = fc
  .tuple(fc.constantFrom(1, 2, 4, 11, 4000), fc.constantFrom(10, 100, 5_000, 100_000), fc.boolean(), fc.boolean())
  .map(([field, depth, closed, afterValid]): Case => {
    const open = tag(field, WIRE.startGroup);
    const close = tag(field, WIRE.endGroup);
    const prefix = afterValid ? encode(checkRequestTree(KNOWN_ALLOW)) : new Uint8Array(0);
    const bytes = new Uint8Array(prefix.length + depth * (open.length + (closed ? close.length : 0)));
    bytes.set(prefix, 0);
    let o = prefix.length;
    for (let i = 0; i < depth; i++, o += open.length) bytes.set(open, o);
    if (closed) for (let i = 0; i < depth; i++, o += close.length) bytes.set(close, o);
    return { kind: `groups of field ${field} ${depth} deep${closed ? '' : ', never closed'}${afterValid ? ', after a valid request' : ''}`, bytes, mustDeny: false };
  });

// protobufjs refuses nesting past its depth limit; the depths straddle it.
const deepStructArb = fc.tuple(baseArb, fc.constantFrom(10, 60, 200, 5_000)).map(([req, depth]): Case => {
  const [attrs] = checkRequestTree(req);
  if (attrs?.kind !== 'message') throw new Error('unexpected tree');
  const tree: WireNode[] = [{ ...attrs, children: [...attrs.children, deepStructMetadata(depth)] }];
  return { kind: `Struct ${depth} deep in metadata_context`, bytes: encode(tree), mustDeny: false };
});

/** Invalid UTF-8 inside a string field: one the decision reads (must deny), or any other (decided on what it decodes to). */
const invalidUtf8Arb = fc.tuple(baseArb, fc.nat(), fc.nat(), fc.constantFrom(...INVALID_UTF8), fc.boolean()).map(([req, pick, at, bad, readField]): Case => {
  const tree = checkRequestTree(req);
  const strings = nodesOf(tree).filter(({ node }) => node.kind === 'string');
  const candidates = strings.filter(({ fields }) => READ_FIELDS.includes(fields.join('.')) === readField);
  const { node, path } = candidates[pick % candidates.length]!;
  if (node.kind !== 'string') throw new Error('unexpected node');
  const i = at % (node.value.length + 1);
  const value = Uint8Array.from([...node.value.slice(0, i), ...bad, ...node.value.slice(i)]);
  return { kind: `invalid UTF-8 in ${readField ? 'a read' : 'an unread'} field ${node.field}`, bytes: encode(replaceAt(tree, path, { ...node, value })), mustDeny: readField };
});

const caseArb: fc.Arbitrary<Case> = fc.oneof(randomBytesArb, truncatedArb, flippedArb, wrongWireTypeArb, hugeLengthArb, deepGroupsArb, deepStructArb, invalidUtf8Arb);

type RawAnswer = { error: grpc.ServiceError } | { response: Buffer };

/** What the project's own protos make of the bytes, or null where they cannot be decoded. */
function decodeLocally(bytes: Uint8Array): CheckRequest | null {
  try {
    return authorizationService().Check!.requestDeserialize(Buffer.from(bytes)) as CheckRequest;
  } catch {
    return null;
  }
}

function asRefRequest(req: CheckRequest): RefRequest | null {
  const attributes = req.attributes;
  if (!attributes) return null;
  const http = attributes.request?.http ?? null;
  return {
    principal: attributes.source?.principal,
    http: http === null ? null : { method: http.method ?? '', path: http.path ?? '', host: http.host ?? '' },
  };
}

describe('malformed protobuf sent as a CheckRequest (property)', () => {
  let server: RunningServer;
  let raw: grpc.Client;
  const kinds = new Map<string, { errors: number; denies: number; allows: number }>();
  // The server runs in this process: an exception escaping it would take a real server down.
  const crashes: unknown[] = [];
  const onCrash = (err: unknown): void => {
    crashes.push(err);
  };

  const rawCheck = (bytes: Uint8Array): Promise<RawAnswer> =>
    new Promise((resolve) => {
      raw.makeUnaryRequest(CHECK, (b: Buffer) => b, (b: Buffer) => b, Buffer.from(bytes), (err, res) => resolve(err ? { error: err } : { response: res! }));
    });

  beforeAll(async () => {
    server = await startServer(MANIFEST, 1000);
    raw = new grpc.Client(server.address, grpc.credentials.createInsecure());
    process.on('uncaughtException', onCrash);
    process.on('unhandledRejection', onCrash);
  });

  afterAll(async () => {
    process.off('uncaughtException', onCrash);
    process.off('unhandledRejection', onCrash);
    raw?.close();
    await server?.stop();
    console.log('malformed protobuf, outcomes by kind:', JSON.stringify(Object.fromEntries([...kinds].map(([k, v]) => [k.replace(/\d+/g, 'N'), v]))));
  });

  it('never crashes the server, never allows what the bytes do not decode to an allowed request, and leaves it deciding correctly', async () => {
    await fc.assert(
      fc.asyncProperty(caseArb, async ({ kind, bytes, mustDeny }) => {
        const answer = await rawCheck(bytes);
        const decoded = decodeLocally(bytes);
        const tally = kinds.get(kind.replace(/\d+/g, 'N')) ?? { errors: 0, denies: 0, allows: 0 };
        kinds.set(kind.replace(/\d+/g, 'N'), tally);
        if ('error' in answer) {
          tally.errors++;
          // A gRPC error is a refusal; it should be the one the decoder gave, not a server fault.
          expect({ kind, decodable: decoded !== null, code: answer.error.code }).toEqual({ kind, decodable: false, code: grpc.status.INTERNAL });
        } else {
          const res = authorizationService().Check!.responseDeserialize(answer.response) as CheckResponse;
          const { allowed } = outcomeOf(res);
          if (allowed) tally.allows++;
          else tally.denies++;
          if (allowed) {
            // An allow must rest on a well-formed request the manifest allows, and never on a corrupted read field.
            const ref = decoded === null ? null : asRefRequest(decoded);
            expect({ kind, mustDeny, referenceAllows: ref !== null && refDecide(MANIFEST, ref).allowed }).toEqual({ kind, mustDeny: false, referenceAllows: true });
          }
        }
        // Still serving, and still right, with nothing thrown past the server.
        const [good, bad] = await Promise.all([decide(server.client, KNOWN_ALLOW), decide(server.client, KNOWN_DENY)]);
        await new Promise((resolve) => setImmediate(resolve));
        expect({ kind, crashes: crashes.map(String) }).toEqual({ kind, crashes: [] });
        expect(good).toMatchObject({ allowed: true, rule: 'gateway-predicts' });
        expect(bad).toMatchObject({ allowed: false, code: 'denied_by_rule', rule: 'no-admin' });
      }),
      { numRuns: 300 },
    );
  });
});
