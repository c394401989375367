import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { httpArb, invalidIdArb, show, wellFormedRequestArb } from './helpers/grammar.js';
import { MANIFEST } from './helpers/manifest.js';
import { refTrustDomain, type RefRequest } from './helpers/reference.js';
import { decide, startServer, type RunningServer } from './helpers/server.js';

/** Routes of every kind: ones the manifest allows for some caller, hostile ones, and none (network filter). */
const routeArb: fc.Arbitrary<RefRequest['http']> = fc.oneof(
  { weight: 3, arbitrary: wellFormedRequestArb.map((r) => r.http) },
  { weight: 2, arbitrary: httpArb },
  { weight: 1, arbitrary: fc.constant(null) },
);

// Only IDs the reference itself refuses count: a mutation that happened to leave a valid ID is dropped.
const badIdArb = invalidIdArb.filter((id) => id !== '' && refTrustDomain(id) === null);

const BATCH = 25;

describe('invalid SPIFFE IDs (property)', () => {
  let server: RunningServer;

  beforeAll(async () => {
    server = await startServer(MANIFEST, 1000);
  });

  afterAll(async () => {
    await server?.stop();
  });

  it('are never allowed, whatever the route, and are refused as invalid_identity', async () => {
    let checks = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(fc.record({ principal: badIdArb, http: routeArb }), { minLength: 1, maxLength: BATCH, size: 'max' }), async (batch) => {
        const outcomes = await Promise.all(batch.map((req) => decide(server.client, req)));
        checks += batch.length;
        batch.forEach((request, i) => {
          const { allowed, code } = outcomes[i]!;
          expect({ request: show(request), allowed, code }).toEqual({ request: show(request), allowed: false, code: 'invalid_identity' });
        });
      }),
      { numRuns: 60 },
    );
    expect(checks).toBeGreaterThan(500);
  });
});
