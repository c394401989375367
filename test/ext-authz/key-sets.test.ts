import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { jwtVerify } from 'jose';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuthzError } from '../../ext-authz/src/errors.js';
import { parseJwks, RemoteKeySet } from '../../ext-authz/src/end-users/key-sets.js';
import { jwks, signingKey, token, type SigningKey } from '../helpers/tokens.js';

const ISS = 'https://auth.example.com';

/** An issuer's JWKS endpoint whose answer the test controls. */
function jwksServer(): Promise<{ server: Server; url: string; serve: (body: string | null) => void; hits: () => number }> {
  let body: string | null = null;
  let hits = 0;
  const server = createServer((_req, res) => {
    hits++;
    if (body === null) res.writeHead(503).end();
    else res.writeHead(200, { 'content-type': 'application/json' }).end(body);
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () =>
      resolve({ server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks.json`, serve: (b) => (body = b), hits: () => hits }),
    ),
  );
}

describe('JWKS documents', () => {
  it.each([
    ['not JSON', '{', /^jwks\.json: not JSON/],
    ['no keys', '{"keys": []}', 'jwks.json: expected {"keys": [...]} with at least one JWK'],
    ['a key without kty', '{"keys": [{"kid": "a"}]}', 'jwks.json: expected {"keys": [...]} with at least one JWK'],
  ])('refuses %s, naming the file', (_what, text, message) => {
    expect(() => parseJwks(text, 'jwks.json')).toThrow(message);
  });
});

describe('a remote JWKS', () => {
  let a: SigningKey;
  let b: SigningKey;
  let issuer: Awaited<ReturnType<typeof jwksServer>>;
  const log = pino({ level: 'silent' });

  beforeAll(async () => {
    [a, b] = await Promise.all([signingKey('ES256', 'a'), signingKey('ES256', 'b')]);
    issuer = await jwksServer();
  });
  afterAll(() => issuer.server.close());

  const verify = async (set: RemoteKeySet, key: SigningKey) => jwtVerify(await token(key, { iss: ISS, aud: 'x' }), set.getKey);

  it('follows the issuer through a key rotation, and says when its keys changed', async () => {
    issuer.serve(JSON.stringify(jwks(a)));
    let changes = 0;
    const set = new RemoteKeySet({ url: issuer.url, refreshMs: 60_000, maxStaleMs: 60_000, log, onChange: () => changes++ });
    await set.start();
    try {
      await expect(verify(set, a)).resolves.toBeDefined();
      await expect(verify(set, b)).rejects.toThrow();
      issuer.serve(JSON.stringify(jwks(b)));
      await set.refresh();
      await expect(verify(set, b)).resolves.toBeDefined();
      await expect(verify(set, a)).rejects.toThrow();
      expect(changes).toBe(2);
      await set.refresh();
      expect(changes).toBe(2); // same keys again: no change
    } finally {
      set.close();
    }
  });

  it('keeps verifying with the last good keys while fetches fail, for at most the stale period, then fails closed', async () => {
    issuer.serve(JSON.stringify(jwks(a)));
    let clock = 1_000_000;
    const set = new RemoteKeySet({ url: issuer.url, refreshMs: 10_000, maxStaleMs: 30_000, log, onChange: () => undefined, now: () => clock });
    await set.start();
    try {
      issuer.serve(null);
      clock += 20_000;
      await set.refresh(); // fails
      await expect(verify(set, a)).resolves.toBeDefined();
      clock += 20_001; // 40 s since the last good fetch: past refresh + max stale
      await expect(verify(set, a)).rejects.toSatisfy((e) => e instanceof AuthzError && e.code === 'invalid_token' && /past their allowed staleness/.test(e.message));
      issuer.serve(JSON.stringify(jwks(a)));
      await set.refresh();
      await expect(verify(set, a)).resolves.toBeDefined();
    } finally {
      set.close();
    }
  });

  it('refuses tokens until a first fetch succeeds', async () => {
    issuer.serve(null);
    const set = new RemoteKeySet({ url: issuer.url, refreshMs: 60_000, maxStaleMs: 0, log, onChange: () => undefined });
    await set.start();
    try {
      await expect(verify(set, a)).rejects.toSatisfy((e) => e instanceof AuthzError && /^no keys from/.test(e.message));
    } finally {
      set.close();
    }
  });

  it('refetches early for an unknown key, but at most once per cooldown, so forged kids cannot flood the issuer', async () => {
    issuer.serve(JSON.stringify(jwks(a)));
    let clock = 5_000_000;
    const set = new RemoteKeySet({ url: issuer.url, refreshMs: 3_600_000, maxStaleMs: 0, log, onChange: () => undefined, now: () => clock });
    await set.start();
    try {
      const before = issuer.hits();
      clock += 10_000;
      set.unknownKey();
      set.unknownKey();
      await set.refresh(); // joins the refresh already in flight
      expect(issuer.hits()).toBe(before + 1);
      set.unknownKey(); // within the cooldown of that attempt
      await new Promise((r) => setTimeout(r, 50));
      expect(issuer.hits()).toBe(before + 1);
    } finally {
      set.close();
    }
  });
});
