import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { afterAll, describe, expect, it } from 'vitest';
import { parseInfergateArgs, runRender, UsageError } from '../../cli/render-command.js';
import { ROOT, requireTool } from '../helpers/paths.js';
import { EXAMPLE_INPUT, RENDERED_DIR } from './helpers/example.js';

const tmp = mkdtempSync(join(tmpdir(), 'infergate-render-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('infergate render flags', () => {
  it('reads render, --manifest, --out, --filters', () => {
    expect(parseInfergateArgs(['render', '--manifest', 'a.yaml'])).toEqual({ manifest: 'a.yaml', out: null, filters: 'wasmplugin' });
    expect(parseInfergateArgs(['render', '--manifest', 'a.yaml', '--out', 'o', '--filters', 'envoyfilter'])).toEqual({ manifest: 'a.yaml', out: 'o', filters: 'envoyfilter' });
    expect(parseInfergateArgs([])).toBe('help');
    expect(parseInfergateArgs(['render', '--help'])).toBe('help');
  });

  it.each([
    [['deploy'], 'unknown command "deploy" (expected "render")'],
    [['render'], 'render needs --manifest FILE'],
    [['render', '--manifest', 'a', '--filters', 'both'], '--filters: expected wasmplugin or envoyfilter, got "both"'],
    [['render', '--manifest', 'a', '--frobnicate'], "Unknown option '--frobnicate'"],
  ])('%j: %s', (argv, message) => {
    expect(() => parseInfergateArgs(argv)).toThrow(new UsageError(message));
  });

  it('an invalid manifest is a one-line error and exit 1, and writes nothing', () => {
    const bad = join(tmp, 'bad.yaml');
    writeFileSync(bad, readFileSync(EXAMPLE_INPUT, 'utf8').replace('replicas: 3', 'replicas: three'));
    const out = join(tmp, 'never');
    expect(runRender({ manifest: bad, out, filters: 'wasmplugin' })).toEqual({ stdout: '', stderr: 'infergate render: bad.yaml: expected number, got string (deployment.server.replicas)\n', code: 1 });
    expect(() => readdirSync(out)).toThrow();
  });

  it('a missing manifest is a one-line error', () => {
    expect(runRender({ manifest: join(tmp, 'nope.yaml'), out: null, filters: 'wasmplugin' }).stderr).toBe(`infergate render: nope.yaml: cannot read manifest: ENOENT (${join(tmp, 'nope.yaml')})\n`);
  });
});

describe('the built bin', () => {
  const bin = () => requireTool(`${ROOT}dist/cli/infergate.js`, 'run `make setup` (or scripts/build.sh) to build the TypeScript');

  it('--out writes the same files as the checked-in examples', () => {
    const out = join(tmp, 'out');
    const r = spawnSync(process.execPath, [bin(), 'render', '--manifest', EXAMPLE_INPUT, '--out', out], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(r.stderr).toBe(`wrote 11 files to ${out}\n`);
    for (const f of readdirSync(RENDERED_DIR)) expect(readFileSync(join(out, f), 'utf8'), f).toBe(readFileSync(join(RENDERED_DIR, f), 'utf8'));
  });

  it('stdout is one parseable multi-document stream', () => {
    const r = spawnSync(process.execPath, [bin(), 'render', '--manifest', EXAMPLE_INPUT], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    const docs = parseAllDocuments(r.stdout).map((d) => d.toJS() as { kind: string } | null).filter((d) => d !== null);
    expect(docs.map((d) => d.kind)).toEqual([
      'IstioOperator', 'Namespace', 'ServiceAccount', 'ConfigMap', 'Deployment', 'Service', 'PodDisruptionBudget',
      // The global quotas' rate-limit service: Redis, then the service.
      'ServiceAccount', 'Deployment', 'Service', 'ServiceAccount', 'ConfigMap', 'Deployment', 'Service', 'PodDisruptionBudget',
      'PeerAuthentication', 'PeerAuthentication', 'PeerAuthentication', 'AuthorizationPolicy', 'AuthorizationPolicy',
      // Who may reach the rate-limit service and its Redis.
      'AuthorizationPolicy', 'AuthorizationPolicy',
      // One guard plugin per workload (the default filter form), then the global quotas per workload.
      'WasmPlugin', 'WasmPlugin', 'EnvoyFilter', 'EnvoyFilter', 'Telemetry', 'Telemetry', 'PrometheusRule',
    ]);
  });

  it('bad usage exits 2 with a one-line error and the usage line', () => {
    const r = spawnSync(process.execPath, [bin(), 'render'], { encoding: 'utf8' });
    expect(r.status).toBe(2);
    expect(r.stderr).toBe('infergate: render needs --manifest FILE\nUsage: infergate render --manifest FILE [--out DIR] [--filters wasmplugin|envoyfilter]\n');
  });
});
