import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ManifestError } from '../../ext-authz/src/config-error.js';
import { loadRenderInput } from '../../istio/render/load-input.js';
import { renderFiles } from '../../istio/render/render.js';
import { runRender } from '../../cli/render-command.js';
import { jwks, signingKey } from '../helpers/tokens.js';
import { EXAMPLE_DIR, variantText } from './helpers/example.js';

/**
 * The JWKS files a manifest names go into the server's ConfigMap beside the
 * manifest (istio/render/jwks-files.ts), read relative to the input
 * manifest and checked with the server's own JWKS parser. Each way that can
 * go wrong is one fixture with the exact message.
 */

const tmp = mkdtempSync(join(tmpdir(), 'infergate-jwks-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const publicJwks = JSON.stringify(jwks(await signingKey('ES256', 'k1')));

type Manifest = Record<string, any>;
let n = 0;

/** A directory holding the example with `access` applied to its access part, and `files` beside it. */
function inputDir(access: (m: Manifest) => void, files: Record<string, string> = { 'jwks.json': publicJwks }): string {
  const dir = join(tmp, `case-${n++}`);
  mkdirSync(dir);
  writeFileSync(join(dir, 'infergate.yaml'), variantText(() => {}, access));
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(join(dir, name, '..'), { recursive: true });
    writeFileSync(join(dir, name), text);
  }
  return dir;
}

function configMapData(dir: string): Record<string, string> {
  const ext = renderFiles(loadRenderInput(join(dir, 'infergate.yaml'))).find((f) => f.name === 'ext-authz.yaml')!;
  return (ext.documents.find((d: any) => d.kind === 'ConfigMap') as { data: Record<string, string> }).data;
}

const issuer = (m: Manifest) => m.endUsers.issuers[0];

describe('JWKS files in the server ConfigMap', () => {
  it('ships the example\'s JWKS file, byte for byte, under the name the manifest gives it', () => {
    const data = configMapData(EXAMPLE_DIR);
    expect(Object.keys(data)).toEqual(['manifest.yaml', 'jwks.json']);
    expect(data['jwks.json']).toBe(readFileSync(join(EXAMPLE_DIR, 'jwks.json'), 'utf8'));
    expect(data['manifest.yaml']).toContain('jwks: {file: jwks.json}');
  });

  it('reads the files relative to the input manifest, not the working directory', () => {
    const dir = inputDir(() => {});
    expect(configMapData(dir)['jwks.json']).toBe(publicJwks);
  });

  it('ships a file two issuers share once, a "./" name under its plain name, and nothing for a JWKS url', () => {
    const dir = inputDir((m) => {
      issuer(m).jwks = { file: './jwks.json' };
      m.endUsers.issuers.push({ issuer: 'https://second.example.com', audiences: ['model-api'], jwks: { file: 'jwks.json' } });
      m.endUsers.issuers.push({ issuer: 'https://remote.example.com', audiences: ['model-api'], jwks: { url: 'https://remote.example.com/jwks.json' } });
    });
    expect(Object.keys(configMapData(dir))).toEqual(['manifest.yaml', 'jwks.json']);
  });

  it('ships no key file for a manifest without file JWKS', () => {
    const dir = inputDir((m) => { issuer(m).jwks = { url: 'https://auth.example.com/jwks.json' }; }, {});
    expect(Object.keys(configMapData(dir))).toEqual(['manifest.yaml']);
  });

  const privateEc = (k: Record<string, unknown>) => JSON.stringify({ keys: [{ ...k, d: 'c2VjcmV0' }] });
  const CASES: Array<[string, (m: Manifest) => void, Record<string, string>, (dir: string) => string]> = [
    ['a missing file', () => {}, {}, (dir) => `cannot read JWKS file ${join(dir, 'jwks.json')}: ENOENT (endUsers.issuers[0].jwks.file)`],
    ['a file in a subdirectory (no "/" in a ConfigMap key)', (m) => { issuer(m).jwks = { file: 'keys/jwks.json' }; }, { 'keys/jwks.json': publicJwks },
      () => 'JWKS file "keys/jwks.json" cannot go in the server\'s ConfigMap beside the manifest: name a file in the manifest\'s own directory (letters, digits, ".", "_", "-") (endUsers.issuers[0].jwks.file)'],
    ['a file named like the manifest key', (m) => { issuer(m).jwks = { file: 'manifest.yaml' }; }, { 'manifest.yaml': publicJwks },
      () => 'JWKS file "manifest.yaml" would replace the manifest in the server\'s ConfigMap (key manifest.yaml); rename it (endUsers.issuers[0].jwks.file)'],
    ['a file that is not JSON', () => {}, { 'jwks.json': 'keys: []' },
      () => 'JWKS file "jwks.json": not JSON: Unexpected token \'k\', "keys: []" is not valid JSON (endUsers.issuers[0].jwks.file)'],
    ['a file without keys', () => {}, { 'jwks.json': '{"keys": []}' },
      () => 'JWKS file "jwks.json": expected {"keys": [...]} with at least one JWK (endUsers.issuers[0].jwks.file)'],
    ['a private key', () => {}, { 'jwks.json': privateEc(JSON.parse(publicJwks).keys[0]) },
      () => 'JWKS file "jwks.json" holds private key material (keys[0].d); a ConfigMap is readable, publish public keys only (endUsers.issuers[0].jwks.file)'],
    ['a symmetric key', () => {}, { 'jwks.json': JSON.stringify({ keys: [{ kty: 'oct', k: 'c2VjcmV0' }] }) },
      () => 'JWKS file "jwks.json" holds private key material (keys[0].k); a ConfigMap is readable, publish public keys only (endUsers.issuers[0].jwks.file)'],
  ];

  it.each(CASES)('refuses %s with an exact message', (_name, access, files, message) => {
    const dir = inputDir(access, files);
    const m = message(dir);
    expect(() => configMapData(dir)).toThrow(new ManifestError('infergate.yaml', m.replace(/ \(([^()]*)\)$/, ''), m.match(/\(([^()]*)\)$/)![1]!));
  });

  it('is a one-line error of the render command, which then writes nothing', () => {
    const dir = inputDir(() => {}, {});
    const out = join(dir, 'out');
    expect(runRender({ manifest: join(dir, 'infergate.yaml'), out, filters: 'wasmplugin' })).toEqual({
      stdout: '', stderr: `infergate render: infergate.yaml: cannot read JWKS file ${join(dir, 'jwks.json')}: ENOENT (endUsers.issuers[0].jwks.file)\n`, code: 1,
    });
    expect(existsSync(out)).toBe(false);
  });
});
