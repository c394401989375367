import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { globToRegex } from '../../ext-authz/src/manifest.js';
import { normalisePath } from '../../ext-authz/src/path.js';
import { renderBootstrap } from '../../envoy/bootstrap.js';
import { MAX_PROGRAM_SIZE, pathRegex, pathRegexSizeError, programSizeBound } from '../../istio/render/path-regex.js';
import { validateEnvoyConfig } from '../helpers/envoy.js';
import { makePki } from '../helpers/pki.js';

/**
 * A budget's path regex against the server's own matching: every request
 * target the server would authorize under a glob (its normalisePath, then
 * its globToRegex) is counted under it by the regex Envoy runs on the raw
 * `:path`, whatever escapes or query the target carries; and a target the
 * server would not match (up to a query and one trailing slash) is not
 * counted. The size bound keeps every accepted regex inside Envoy's RE2
 * program limit, checked with the real Envoy at the boundary.
 */

const GLOBS = ['/v1/models/*:predict', '/v2/models/*/infer', '/admin/**', '/**', '/v1/models/', '/x/a.b~c-d_e', "/v1/models/a!$&'()+,=@:b", '/v1/models/*', '/v2/*/*/generate'];
const PATHS = [
  '/v1/models/x:predict', '/v1/models/:predict', '/v1/models/x/y:predict', '/v1/models/x:predictx', '/v2/models/m/infer', '/v2/models/m/infer/more',
  '/admin', '/admin/x/y', '/adminx', '/', '/v1/models/', '/v1/models', '/x/a.b~c-d_e', '/x/aXb~c-d_e', "/v1/models/a!$&'()+,=@:b", '/v1/models/anything',
  '/v2/models/m/generate', '/v2/models/generate',
];
const SUB_DELIMS = "!$&'()*+,;=:@";
const tmp = mkdtempSync(join(tmpdir(), 'infergate-path-regex-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const server = (g: string, decoded: string) => new RegExp(globToRegex(g)).test(decoded);
const counted = (g: string, raw: string) => new RegExp(pathRegex(g)).test(raw);

/** The path with each sub-delimiter percent-encoded (what Envoy's normalize_path leaves as it is), in upper or lower hex. */
function encodeSubDelims(path: string, lower: boolean): string {
  return [...path].map((c) => {
    if (!SUB_DELIMS.includes(c)) return c;
    const hex = c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0');
    return `%${lower ? hex.toLowerCase() : hex}`;
  }).join('');
}

describe("a budget's path regex", () => {
  it.each(GLOBS)('%s: counts every form of a path the server matches, and no path it does not', (g) => {
    for (const p of PATHS) {
      if (server(g, p)) {
        for (const raw of [p, `${p}?stream=true&n=1`, encodeSubDelims(p, false), `${encodeSubDelims(p, true)}?x`]) {
          // The server reads this target as p, so the budget must count it.
          expect(normalisePath(raw)).toBe(p);
          expect(counted(g, raw), `${g} ${raw}`).toBe(true);
        }
        // One more slash: some model servers serve it as p, so the budget counts it too.
        if (!p.endsWith('/')) expect(counted(g, `${p}/`), `${g} ${p}/`).toBe(true);
      } else if (!server(g, p.replace(/\/$/, ''))) {
        expect(counted(g, p), `${g} must not count ${p}`).toBe(false);
      }
    }
  });

  it('agrees with the server on random paths of the glob alphabet, escapes and queries included', () => {
    const segment = fc.stringMatching(/^[A-Za-z0-9._~!$&'()+,=:@-]{1,6}$/).filter((s) => s !== '.' && s !== '..');
    fc.assert(
      fc.property(fc.constantFrom(...GLOBS), fc.array(segment, { minLength: 1, maxLength: 4 }), fc.boolean(), (g, segs, query) => {
        const p = `/${segs.join('/')}`;
        const raw = encodeSubDelims(p, segs.length % 2 === 0) + (query ? '?q=1' : '');
        expect(normalisePath(raw)).toBe(p);
        if (server(g, p)) expect(counted(g, raw), `${g} ${raw}`).toBe(true);
        else if (!server(g, p.replace(/\/$/, ''))) expect(counted(g, raw), `${g} ${raw}`).toBe(false);
      }),
      { numRuns: 500 },
    );
  });

  it('keeps every regex render accepts within Envoy\'s RE2 program limit, shown with the real Envoy at the boundary', async () => {
    // The longest glob of each shape render still accepts, and one character more.
    const longest = (make: (n: number) => string): [string, string] => {
      let n = 1;
      while (pathRegexSizeError(make(n + 1), pathRegex(make(n + 1))) === null) n++;
      return [make(n), make(n + 1)];
    };
    const shapes = [
      (n: number) => `/${'a'.repeat(n)}`,
      (n: number) => `/v1/${':'.repeat(n)}`,
      (n: number) => `/${Array.from({ length: n }, () => '*').join('/')}`,
      (n: number) => `/${'b'.repeat(n)}/**`,
      // Literals after a wildcard: RE2 drops a literal prefix from the program, but not these.
      (n: number) => `/v1/*/${'m'.repeat(n)}:predict`,
    ];
    const accepted: string[] = [];
    for (const shape of shapes) {
      const [fits, over] = longest(shape);
      expect(programSizeBound(pathRegex(fits))).toBeLessThanOrEqual(MAX_PROGRAM_SIZE);
      expect(pathRegexSizeError(over, pathRegex(over))).not.toBeNull();
      accepted.push(fits);
    }
    const pki = makePki(join(tmp, 'pki'), {});
    const config = (globs: string[]) => renderBootstrap({
      listenerPort: 0,
      tls: pki,
      extAuthz: null,
      upstream: { host: '127.0.0.1', port: 8080 },
      globalRateLimit: {
        service: { host: '127.0.0.1', port: 8081 },
        firstFilters: [],
        filters: [],
        rateLimits: globs.map((g) => ({ actions: [{ header_value_match: { descriptor_value: 'x', headers: [{ name: ':path', string_match: { safe_regex: { regex: pathRegex(g) } } }] } }] })),
      },
    });
    const ok = await validateEnvoyConfig(config(accepted));
    expect(ok.output).not.toMatch(/program size/);
    // The limit is real: a glob well over it (which render refuses) makes Envoy reject the whole listener.
    const rejected = await validateEnvoyConfig(config([`/*/${'c'.repeat(120)}`]));
    expect(rejected.output).toMatch(/RE2 program size of \d+ > max program size of 100/);
    expect(rejected.ok).toBe(false);
  }, 60_000);
});
