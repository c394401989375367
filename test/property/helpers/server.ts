import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CheckResponse } from '../../../ext-authz/src/check-response.js';
import { AuthzServer } from '../../../ext-authz/src/server.js';
import { authzClient, httpCheck, type AuthzClient } from '../../helpers/authz-client.js';
import { requireBundle } from '../../helpers/paths.js';
import type { RefManifest, RefRequest } from './reference.js';

export interface RunningServer {
  readonly server: AuthzServer;
  readonly client: AuthzClient;
  readonly address: string;
  stop(): Promise<void>;
}

/** The real server, in-process on a free port, serving `manifest` (written as JSON, which is YAML). */
export async function startServer(manifest: RefManifest, cacheSize: number): Promise<RunningServer> {
  const dir = mkdtempSync(join(tmpdir(), 'infergate-property-'));
  const manifestPath = join(dir, 'manifest.json');
  writeFileSync(manifestPath, JSON.stringify(manifest, null, 2));
  const server = await AuthzServer.start({
    bundlePath: requireBundle(),
    manifestPath,
    listen: '127.0.0.1:0',
    socket: null,
    metricsListen: null,
    dryRun: false,
    cacheSize,
    cacheTtlSeconds: 600,
    trustXfcc: false,
    inputHeaders: [],
    decisionLog: 'off',
    logLevel: 'silent',
    watch: false,
  });
  const address = `127.0.0.1:${server.port}`;
  const client = authzClient(address);
  return {
    server,
    client,
    address,
    async stop() {
      client.close();
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A RefRequest as Envoy's HTTP (or, with http null, network) ext_authz filter sends it. */
export function toCheckRequest(req: RefRequest): unknown {
  if (req.http === null) {
    return {
      attributes: {
        source: req.principal === undefined ? {} : { principal: req.principal },
        destination: { principal: 'spiffe://cluster.local/ns/ml/sa/model' },
      },
    };
  }
  return httpCheck(req.principal, req.http.method, req.http.path, req.http.host);
}

/** What a check decided, read from the response the way Envoy and its access log read it. */
export interface Outcome {
  readonly allowed: boolean;
  readonly code: string;
  readonly rule: string | null;
  readonly http: number;
}

type Value = Record<string, unknown> & { kind?: string };

function metadataValue(res: CheckResponse, key: string): unknown {
  const v = (res.dynamic_metadata?.fields as Record<string, Value> | undefined)?.[key];
  return v && v.kind ? v[v.kind] : undefined;
}

export function outcomeOf(res: CheckResponse): Outcome {
  // Envoy allows exactly when the status is OK, and an unset status reads as OK
  // (proto3 without defaults: an OK status arrives with no code at all).
  const grpcOk = (res.status?.code ?? 0) === 0;
  const rule = metadataValue(res, 'rule');
  return {
    allowed: grpcOk,
    code: String(metadataValue(res, 'reason')),
    rule: typeof rule === 'string' ? rule : null,
    http: grpcOk ? 200 : (res.denied_response?.status?.code ?? 0),
  };
}

export async function decide(client: AuthzClient, req: RefRequest): Promise<Outcome> {
  return outcomeOf(await client.check(toCheckRequest(req)));
}

/** Whether the response came from the decision cache (for checking the cache was exercised at all). */
export function cacheHit(res: CheckResponse): boolean {
  return metadataValue(res, 'cache_hit') === true;
}
