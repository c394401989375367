import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuthzServer } from '../../ext-authz/src/server.js';
import { authzClient, httpCheck, type AuthzClient } from '../helpers/authz-client.js';
import { EXAMPLE_MANIFEST, requireBundle } from '../helpers/paths.js';

const GATEWAY = 'spiffe://cluster.local/ns/gateway/sa/api-gateway';
const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const PARENT = '00f067aa0ba902b7';

interface OtlpSpan { traceId: string; spanId: string; parentSpanId?: string; name: string; attributes: Array<{ key: string; value: Record<string, unknown> }> }

/** A minimal OTLP/HTTP trace receiver: what a collector would be sent. */
function startReceiver(): Promise<{ server: Server; url: string; spans: OtlpSpan[]; contentTypes: string[] }> {
  const spans: OtlpSpan[] = [];
  const contentTypes: string[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      contentTypes.push(String(req.headers['content-type']));
      const body = JSON.parse(Buffer.concat(chunks).toString()) as { resourceSpans: Array<{ scopeSpans: Array<{ spans: OtlpSpan[] }> }> };
      for (const rs of body.resourceSpans) for (const ss of rs.scopeSpans) spans.push(...ss.spans);
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/traces`, spans, contentTypes })));
}

const attr = (s: OtlpSpan, key: string) => {
  const v = s.attributes.find((a) => a.key === key)?.value;
  return v ? Object.values(v)[0] : undefined;
};

describe('OpenTelemetry spans per check (--otlp-endpoint)', () => {
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  let server: AuthzServer;
  let client: AuthzClient;

  beforeAll(async () => {
    receiver = await startReceiver();
    server = await AuthzServer.start({
      bundlePath: requireBundle(), manifestPath: EXAMPLE_MANIFEST, listen: '127.0.0.1:0', socket: null, metricsListen: null,
      dryRun: false, cacheSize: 100, cacheTtlSeconds: 60, trustXfcc: false, inputHeaders: [], decisionLog: 'off', logLevel: 'silent', watch: false,
      tracing: { endpoint: receiver.url, ratio: 0 },
    });
    client = authzClient(`127.0.0.1:${server.port}`);
  });
  afterAll(async () => {
    client?.close();
    await server?.stop();
    receiver?.server.close();
  });

  it('exports one span per check of a sampled trace, as a child of the caller span, carrying the decision', async () => {
    await client.check(httpCheck(GATEWAY, 'POST', '/v1/models/bert:predict', 'model-serving.ml.svc.cluster.local', { traceparent: `00-${TRACE}-${PARENT}-01`, 'x-request-id': 'req-span-1' }));
    await client.check(httpCheck('spiffe://cluster.local/ns/ml/sa/compromised', 'POST', '/v1/models/bert:predict', 'model-serving.ml.svc.cluster.local', { traceparent: `00-${TRACE}-${PARENT}-01` }));
    // Not sampled by the mesh, and no trace at all with ratio 0: no spans.
    await client.check(httpCheck(GATEWAY, 'POST', '/v1/models/bert:predict', 'model-serving.ml.svc.cluster.local', { traceparent: `00-${'1'.repeat(32)}-${PARENT}-00` }));
    await client.check(httpCheck(GATEWAY, 'POST', '/v1/models/bert:predict'));
    await server.stop(); // flushes the batch
    expect(receiver.spans).toHaveLength(2);
    const [allow, deny] = receiver.spans;
    for (const s of [allow!, deny!]) {
      expect(s).toMatchObject({ traceId: TRACE, parentSpanId: PARENT, name: 'infergate.check' });
      expect(s.spanId).toMatch(/^[0-9a-f]{16}$/);
    }
    expect(attr(allow!, 'infergate.reason')).toBe('allowed');
    expect(attr(allow!, 'infergate.rule')).toBe('gateway-predicts');
    expect(attr(allow!, 'infergate.caller')).toBe(GATEWAY);
    expect(attr(allow!, 'http.request.header.x-request-id')).toBe('req-span-1');
    expect(attr(deny!, 'infergate.reason')).toBe('quarantined');
    expect(attr(deny!, 'infergate.allowed')).toBe(false);
  });
});
