// Stream contexts are found by id on every callback (the registry in
// filters/shared/context.ts, and guard's and rate-limit's pools of finished
// streams behind it). Many streams in flight at once, ending out of order,
// must each keep their own state, and a finished one must not be found again.
import { describe, expect, it } from 'vitest';
import { ProxyWasmHost, header, type Headers, type Stream } from './host.js';
import { builtFilter } from './built.js';

const RATE = { identity: 'header:x-infergate-caller', default: { perSecond: 1, burst: 1_000_000 }, maxCallers: 100 };
const PAYLOAD = { defaultMaxBytes: 1000 };
const caller = (i: number) => `spiffe://cluster.local/ns/app/sa/c${i % 7}`;
const headers = (i: number): Headers => [[':method', 'POST'], [':path', '/v1/models/m:predict'], ['x-infergate-caller', caller(i)]];

describe('stream contexts by id', () => {
  it('keeps each of 2,500 streams in flight at once apart, ending in any order', () => {
    const host = new ProxyWasmHost(builtFilter('guard'));
    expect(host.configure({ rateLimit: RATE, payloadLimit: PAYLOAD })).toBe(true);
    const open: Stream[] = [];
    for (let i = 0; i < 2500; i++) {
      const s = host.newStream(headers(i));
      host.requestHeaders(s, false);
      open.push(s);
    }
    // each stream's body is counted on its own: every third goes over the limit in two chunks
    open.forEach((s) => host.requestBody(s, 600, false));
    open.forEach((s, i) => { if (!s.localReply) host.requestBody(s, i % 3 === 0 ? 600 : 10, true); });
    open.forEach((s, i) => expect(s.localReply?.status ?? 200, `stream ${i}`).toBe(i % 3 === 0 ? 413 : 200));
    // responses carry each stream's own budget; end them in an order unrelated to their ids
    const order = open.map((_, i) => i).sort((a, b) => ((a * 7919) % 2503) - ((b * 7919) % 2503));
    for (const i of order) {
      const s = open[i]!;
      if (!s.localReply) {
        host.responseHeaders(s, [[':status', '200']], true);
        expect(header(s.responseHeaders, 'x-ratelimit-limit'), `stream ${i}`).toBe('1000000');
      }
      host.finish(s);
    }
    // a finished stream is gone: a late callback for its id is let through untouched
    const gone = open[5]!;
    expect(host.requestBody(gone, 5000, true)).toBe(0);
    expect(gone.localReply).toBeNull();
    // and the table is reusable: the next streams behave as usual
    expect(host.request(headers(1), [1001]).localReply?.status).toBe(413);
    expect(host.request(headers(2), [1000]).localReply).toBeNull();
  });
});
