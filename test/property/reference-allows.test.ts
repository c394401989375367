import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requestArb, show, wellFormedRequestArb } from './helpers/grammar.js';
import { MANIFEST, SEMICOLON_MANIFEST } from './helpers/manifest.js';
import { refDecide, type RefManifest, type RefRequest } from './helpers/reference.js';
import { decide, startServer, type Outcome, type RunningServer } from './helpers/server.js';

// Hostile requests mostly, with enough well-formed ones that allow rules are met often.
const REQUEST = fc.oneof({ weight: 3, arbitrary: requestArb }, { weight: 1, arbitrary: wellFormedRequestArb });
const BATCH = 25;

/**
 * Counterexamples these properties found, kept so every run tries them first:
 * a Host with U+212A KELVIN SIGN, which String.prototype.toLowerCase turns
 * into ASCII "k". host.ts used to lower-case before checking the characters,
 * so a name that is not a DNS name was read as kserve.models.internal and
 * matched against host rules (the project's Envoy answers such a Host with
 * 400 before ext_authz; other front proxies may not).
 */
const FOUND: RefRequest[][] = [
  [{ principal: 'spiffe://cluster.local/ns/ops/sa/admin', http: { method: 'GET', path: '/v1/models/llama', host: '\u212Aserve.models.internal' } }],
  [{ principal: 'spiffe://partner.example/ns/partner/sa/reader', http: { method: 'POST', path: '/v2/models/bert/infer', host: '\u212Aserve.models.internal' } }],
];
const EXAMPLES = FOUND.map((batch): [RefRequest[]] => [batch]);
const RUNS = 30;

async function decideAll(server: RunningServer, batch: readonly RefRequest[]): Promise<Outcome[]> {
  return Promise.all(batch.map((req) => decide(server.client, req)));
}

describe.each([
  ['the default manifest (";" refused)', MANIFEST],
  ['a manifest with requestPaths.allowSemicolons', SEMICOLON_MANIFEST],
] as Array<[string, RefManifest]>)('the server against an independent reference model, %s (property)', (_name, manifest) => {
  let server: RunningServer;
  let allows = 0;
  let checks = 0;

  beforeAll(async () => {
    server = await startServer(manifest, 1000);
  });

  afterAll(async () => {
    await server?.stop();
  });

  it('allows a request only when the reference says the manifest allows it, naming the same rule', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(REQUEST, { minLength: 1, maxLength: BATCH, size: 'max' }), async (batch) => {
        const outcomes = await decideAll(server, batch);
        checks += batch.length;
        batch.forEach((request, i) => {
          const got = outcomes[i]!;
          if (!got.allowed) return;
          allows++;
          const want = refDecide(manifest, request);
          const shown = show(request);
          expect({ request: shown, allowed: true, rule: got.rule }, `the reference denies it (${want.codes.join('|')})`).toEqual({ request: shown, allowed: want.allowed, rule: want.rule });
        });
      }),
      { numRuns: RUNS, examples: EXAMPLES },
    );
    // Not vacuous: a fair share of the generated requests were allowed.
    expect(allows).toBeGreaterThan(checks / 20);
  });

  it('allows every request the reference allows, and denies the rest for a reason the reference gives', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(REQUEST, { minLength: 1, maxLength: BATCH, size: 'max' }), async (batch) => {
        const outcomes = await decideAll(server, batch);
        batch.forEach((request, i) => {
          const got = outcomes[i]!;
          const want = refDecide(manifest, request);
          const reasonAgrees = want.codes.includes(got.code);
          const shown = show(request);
          expect({ request: shown, allowed: got.allowed, code: got.code, reasonAgrees, rule: got.rule }).toEqual({ request: shown, allowed: want.allowed, code: got.code, reasonAgrees: true, rule: want.rule });
          // Every refusal a client causes is a 403 (docs/ext-authz.md, reason codes).
          expect(got.http).toBe(got.allowed ? 200 : 403);
        });
      }),
      { numRuns: RUNS, examples: EXAMPLES },
    );
  });
});
