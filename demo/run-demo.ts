#!/usr/bin/env node
import { parseArgs } from 'node:util';
import { formatTable, playScene } from './scene.js';
import { EPHEMERAL_PORTS, FIXED_PORTS } from '../envoy/local-stack.js';
import { startStack, type Stack } from './stack.js';

const USAGE = `Usage: make demo [DEMO_ARGS="--keep-running | --json | --ephemeral-ports"]

Starts, on 127.0.0.1: a sample model server, infergate-authz, Redis, the
global rate-limit service (envoyproxy/ratelimit) and two Envoy replicas with
mTLS, ext_authz, the rate and payload limits (wasm, the filters of
demo/manifest.yaml's deployment section) and its global quotas; then plays a
scene as example workloads, the API gateway calling for premium and free
tenants (tokens from the demo's own issuer, made in .demo/ on first run), and
prints what each call got.

  --keep-running     leave everything running for manual curl; Ctrl-C stops it all
  --json             print the scene as JSON (for tests) instead of a table
  --ephemeral-ports  bind free ports instead of 10443/9901 and 10444/9902 (the two
                     Envoys), 9191/9464, 8080, 8081/8082 (rate-limit service), 6380 (Redis)
`;

async function main(): Promise<number> {
  const { values } = parseArgs({ options: { 'keep-running': { type: 'boolean' }, json: { type: 'boolean' }, 'ephemeral-ports': { type: 'boolean' }, help: { type: 'boolean', short: 'h' } } });
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const json = values.json ?? false;
  const say = (s: string) => process.stderr.write(`==> ${s}\n`);
  const started = Date.now();
  let stack: Stack;
  try {
    stack = await startStack(values['ephemeral-ports'] ? EPHEMERAL_PORTS : FIXED_PORTS, say);
  } catch (err) {
    process.stderr.write(`demo: ${(err as Error).message}\n`);
    return 1;
  }
  let stopping = false;
  const stop = async (code: number): Promise<never> => {
    if (!stopping) {
      stopping = true;
      say('stopping every process the demo started');
      await stack.stop();
    }
    process.exit(code);
  };
  process.on('SIGINT', () => void stop(0));
  process.on('SIGTERM', () => void stop(0));

  say(`up in ${((Date.now() - started) / 1000).toFixed(1)}s; playing the scene`);
  const rows = await playScene(stack);
  const failed = rows.filter((r) => !r.ok).length;
  const p = stack.ports;
  if (json) {
    process.stdout.write(JSON.stringify({ rows, ports: p }) + '\n');
  } else {
    process.stdout.write(`\n${formatTable(rows)}\n\n`);
    const live = values['keep-running'] ? '' : ' (while it runs: make demo DEMO_ARGS=--keep-running)';
    process.stdout.write(`${rows.length - failed} of ${rows.length} calls got the expected status.\n\nWhere to look${live}:\n`);
    process.stdout.write(`  decision log    ${stack.logDir}/decisions.log   (one JSON line per check)\n`);
    process.stdout.write(`  authz metrics   curl -s http://127.0.0.1:${p.metrics}/metrics | grep infergate_\n`);
    process.stdout.write(`  Envoy stats     curl -s http://127.0.0.1:${p.admin}/stats | grep -E 'ext_authz\.(ok|denied|error)|wasmcustom|infergate_global_quotas'\n`);
  }
  if (values['keep-running']) {
    const c = stack.pki.client('api-gateway');
    const f = stack.tokens.files;
    process.stdout.write(
      `\nEverything keeps running. Call a model as the API gateway, for the premium tenant (acme):\n\n` +
        `  curl --cacert ${stack.pki.caCert} --cert ${c.cert} --key ${c.key} \\\n` +
        `    -H "authorization: Bearer $(cat ${f.premium})" \\\n` +
        `    -H 'content-type: application/json' -d '{"instances":[[0.2,1.5]]}' \\\n` +
        `    https://localhost:${p.envoy}/v1/models/sentiment:predict\n\n` +
        `Other end users: ${f.free} (globex, free tier: /v1/models/text-small:predict only), ${f.expired},\n` +
        `  ${f.metered} (initech: 4 requests an hour across both replicas, :${stack.replicas[0]} and :${stack.replicas[1]}; the scene used them)\n` +
        `Other workloads: ${stack.pki.dir}/{web-frontend,batch-scorer,compromised,foreign-agent}.{crt,key}\n` +
        `Edit demo/manifest.yaml to change who may call what (applied within a second). Ctrl-C stops everything.\n`,
    );
    return new Promise<number>(() => undefined);
  }
  await stack.stop();
  stopping = true;
  return failed === 0 ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`demo: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
