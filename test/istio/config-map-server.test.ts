import { mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CheckResponse } from '../../ext-authz/src/check-response.js';
import { loadRenderInput } from '../../istio/render/load-input.js';
import { renderFiles } from '../../istio/render/render.js';
import { serverArgs } from '../../istio/render/server-deployment.js';
import { authzClient, httpCheck, type AuthzClient } from '../helpers/authz-client.js';
import { startAuthzProcess, type AuthzProcess } from '../helpers/authz-process.js';
import { requireBundle } from '../helpers/paths.js';
import { jwks, signingKey, token, type SigningKey } from '../helpers/tokens.js';
import { exampleText } from './helpers/example.js';

/**
 * The rendered ConfigMap as the real server meets it in a pod: its data laid
 * out the way the kubelet mounts a ConfigMap volume (the files in a
 * timestamped directory, `..data` pointing at it, each key a symlink through
 * `..data`), the server started with the rendered arguments. The JWKS file
 * the manifest names resolves beside it, the tenant rule allows a token
 * signed with that key and sets the quota key the rendered rate-limit rule
 * matches, and a key rotation applied as the kubelet applies a ConfigMap
 * update (a new directory, `..data` renamed over) takes effect without a
 * restart.
 */

const GATEWAY = 'spiffe://cluster.local/ns/gateway/sa/api-gateway';
const GENERATE = '/v2/models/llama/generate';

const tmp = mkdtempSync(join(tmpdir(), 'infergate-configmap-'));
const source = join(tmp, 'source');
const mount = join(tmp, 'etc-infergate');
let generation = 0;

/** Renders source/infergate.yaml and returns the server ConfigMap's data. */
function renderedConfigMap(): Record<string, string> {
  const ext = renderFiles(loadRenderInput(join(source, 'infergate.yaml'))).find((f) => f.name === 'ext-authz.yaml')!;
  return (ext.documents.find((d: any) => d.kind === 'ConfigMap') as { data: Record<string, string> }).data;
}

/** What the kubelet's atomic writer does with a ConfigMap's data: a fresh directory, then `..data` renamed over to point at it. */
function kubeletWrite(data: Record<string, string>): void {
  const stamp = `..2025_01_01_00_00_0${generation++}.000000001`;
  mkdirSync(join(mount, stamp), { recursive: true });
  for (const [key, text] of Object.entries(data)) writeFileSync(join(mount, stamp, key), text);
  const old = readdirSync(mount).filter((f) => f.startsWith('..2') && f !== stamp);
  symlinkSync(stamp, join(mount, '..data_tmp'));
  renameSync(join(mount, '..data_tmp'), join(mount, '..data'));
  for (const key of Object.keys(data)) {
    try {
      symlinkSync(join('..data', key), join(mount, key));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }
  for (const dir of old) rmSync(join(mount, dir), { recursive: true });
}

/** The rendered server arguments, with the mount moved to the test's directory and the ports left to startAuthzProcess. */
function args(): string[] {
  const rendered = serverArgs(loadRenderInput(join(source, 'infergate.yaml')).deployment);
  const out: string[] = ['--bundle', requireBundle()];
  for (let i = 0; i < rendered.length; i += 2) {
    const [flag, value] = [rendered[i]!, rendered[i + 1]!];
    if (flag === '--listen' || flag === '--metrics') continue;
    if (!flag.startsWith('--') || value === undefined || value.startsWith('--')) throw new Error(`unexpected server argument list ${rendered.join(' ')}`);
    out.push(flag, flag === '--manifest' ? join(mount, 'manifest.yaml') : value);
  }
  return out;
}

const headers = (list: Array<{ header: { key: string; value: string } }> | undefined) => Object.fromEntries((list ?? []).map((h) => [h.header.key, h.header.value]));
const reason = (r: CheckResponse) => ((r.status?.code ?? 0) === 0 ? 'allowed' : headers(r.denied_response?.headers)['x-infergate-reason']);

describe('the rendered server ConfigMap, mounted as the kubelet mounts it, in the real server', () => {
  let k1: SigningKey;
  let k2: SigningKey;
  let server: AuthzProcess;
  let client: AuthzClient;

  const tokenFor = (key: SigningKey) => token(key, { iss: 'https://auth.example.com', aud: 'model-api', sub: 'user-1', tenant: 'acme', tier: 'premium', scope: 'generate' });
  const check = async (key: SigningKey) => client.check(httpCheck(GATEWAY, 'POST', GENERATE, 'model-serving.ml.svc.cluster.local', { authorization: `Bearer ${await tokenFor(key)}` }));

  beforeAll(async () => {
    [k1, k2] = await Promise.all([signingKey('ES256', 'k1'), signingKey('EdDSA', 'k2')]);
    mkdirSync(source);
    writeFileSync(join(source, 'infergate.yaml'), exampleText());
    writeFileSync(join(source, 'jwks.json'), JSON.stringify(jwks(k1)));
    kubeletWrite(renderedConfigMap());
    server = await startAuthzProcess(args());
    client = authzClient(`127.0.0.1:${server.port}`);
  });
  afterAll(async () => {
    client?.close();
    await server?.stop();
    rmSync(tmp, { recursive: true, force: true });
  });

  it('verifies a tenant token with the JWKS file shipped beside the manifest, and sets the quota key the tier rule matches', async () => {
    const r = await check(k1);
    expect(reason(r), server.logs()).toBe('allowed');
    const quota = headers(r.ok_response!.headers)['x-infergate-quota'];
    expect(quota).toBe('tenant/premium/acme');
    const rules = loadRenderInput(join(source, 'infergate.yaml')).deployment.filters.rateLimit!.config.callers!;
    expect(rules.filter((c) => c.match.endsWith('*') && quota!.startsWith(c.match.slice(0, -1))).map((c) => c.match)).toEqual(['tenant/premium/*']);
  });

  it('takes a key rotation through the ConfigMap update (..data swap) without a restart', async () => {
    expect(reason(await check(k2))).toBe('invalid_token');
    writeFileSync(join(source, 'jwks.json'), JSON.stringify(jwks(k2)));
    kubeletWrite(renderedConfigMap());
    await expect.poll(async () => reason(await check(k2)), { timeout: 5000, interval: 100 }).toBe('allowed');
    expect(reason(await check(k1))).toBe('invalid_token');
  }, 15_000);
});
