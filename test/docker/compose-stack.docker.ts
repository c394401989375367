import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mtlsRequest } from '../../demo/mtls-client.js';
import { demoTokens, serverDir, type DemoTokens } from '../../demo/issuer.js';
import { playScene } from '../../demo/scene.js';
import { EXPECTED_SINGLE_ENVOY_ROWS } from '../helpers/demo-rows.js';
import { FIXED_PORTS, LOCAL_MANIFEST, WORKLOADS, localFilterChain } from '../../envoy/local-stack.js';
import { RUN_AS } from '../../istio/render/names.js';
import { makePki, type Pki } from '../helpers/pki.js';
import { ROOT, requireTool } from '../helpers/paths.js';
import { COMPOSE_FILE, compose, docker, type Compose } from './compose.js';
import { ensureEngine, run, type Engine } from './engine.js';

/**
 * The Docker path a user takes, run for real: a Docker engine (started here
 * if none runs), local stand-ins for the public base images under the tags
 * the Dockerfile and the compose file name (no image registry is reachable
 * where this runs; envoy/docker/build-bases.sh), then
 * `compose -f envoy/docker-compose.yaml` build and up, as documented:
 * the server image built from the Dockerfile, Envoy with the guard filter,
 * the sample model. The demo scene is played against the containers, and the
 * server container is checked to be as hardened as the Kubernetes Deployment.
 */

const SERVER_IMAGE = 'infergate-authz:0.1.0';
/** 157 MB today, node alone 121 MB; the same server on a node:24-bookworm-slim final stage is 237 MB. */
const SERVER_IMAGE_BUDGET_MB = 180;
const ZERO_CAPS = '0000000000000000';

const say = (line: string): void => void process.stdout.write(`    [docker] ${line}\n`);
const seconds = (since: number): string => `${((Date.now() - since) / 1000).toFixed(1)} s`;
const mb = (bytes: number): string => `${(bytes / 1e6).toFixed(0)} MB`;

async function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

async function until<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** What `docker exec` sees of the server process (PID 1 of its container). */
interface ProcessView {
  cmdline: string;
  status: Record<string, string>;
  rootMountOptions: string[];
  writes: Record<string, string>;
}

describe('the compose stack in Docker (Dockerfile, envoy/docker-compose.yaml)', () => {
  let engine: Engine | undefined;
  let c: Compose | undefined;
  let dir = '';
  let pki: Pki;
  let manifestDir = '';
  let tokens: DemoTokens;

  beforeAll(async () => {
    const began = Date.now();
    // What the compose file mounts from the clone; `make setup` builds it.
    requireTool(`${ROOT}dist/demo/model-server.js`, 'run `make setup` to build the demo');
    for (const f of localFilterChain()) requireTool(`${ROOT}build/filters/${f.id}.wasm`, 'run `make setup` to build the filters');
    // Host networking on envoy/envoy.yaml's fixed ports: nothing else may hold them.
    for (const [name, port] of Object.entries(FIXED_PORTS)) {
      if (!(await portFree(port))) throw new Error(`port ${port} (${name}) is in use on 127.0.0.1; the compose stack needs it (a running \`make demo DEMO_ARGS=--keep-running\`?)`);
    }

    let t = Date.now();
    engine = await ensureEngine(say);
    say(`engine ready in ${seconds(t)}`);

    t = Date.now();
    const bases = run('bash', [`${ROOT}envoy/docker/build-bases.sh`], engine.env, 900_000);
    if (bases.status !== 0) throw new Error(`envoy/docker/build-bases.sh failed:\n${bases.stdout}\n${bases.stderr}`);
    process.stdout.write(bases.stdout);
    say(`base images ready in ${seconds(t)}`);

    // The test's own manifest and PKI (the variables the compose file reads), so
    // it never edits the checkout's demo/manifest.yaml that other runs use.
    dir = mkdtempSync(join(tmpdir(), 'infergate-docker-'));
    // The demo's issuer makes the tokens here on the host and the JWKS beside the manifest copy.
    tokens = await demoTokens(dir);
    manifestDir = serverDir(dir);
    mkdirSync(manifestDir, { recursive: true });
    copyFileSync(LOCAL_MANIFEST, join(manifestDir, 'manifest.yaml'));
    chmodSync(join(manifestDir, 'jwks.json'), 0o644);
    chmodSync(manifestDir, 0o755);
    chmodSync(join(manifestDir, 'manifest.yaml'), 0o644);
    pki = makePki(join(dir, 'pki'), WORKLOADS);
    c = compose(engine, { INFERGATE_MANIFEST_DIR: manifestDir, INFERGATE_PKI_DIR: pki.dir });
    c(['down', '--volumes', '--remove-orphans', '--timeout', '5']); // a crashed earlier run's leftovers

    t = Date.now();
    const before = run('docker', ['image', 'inspect', '-f', '{{.Id}}', SERVER_IMAGE], engine.env).stdout.trim();
    // `up --build`, as users run it, in two steps: v1's classic builder leaves a
    // failed step's container behind unless told --force-rm (BuildKit never does).
    const build = engine.compose[0] === 'docker-compose' ? ['build', '--force-rm'] : ['build'];
    const up = c(build, 900_000) + c(['up', '--detach'], 120_000);
    say(`compose build + up in ${seconds(t)}`);
    // A rebuilt server image leaves the last one untagged; drop it (the build cache stays).
    if (before && before !== run('docker', ['image', 'inspect', '-f', '{{.Id}}', SERVER_IMAGE], engine.env).stdout.trim()) {
      run('docker', ['rmi', before], engine.env);
    }
    if (process.env.INFERGATE_DOCKER_VERBOSE) process.stdout.write(up);
    await until('Envoy to be ready (admin /ready)', 30_000, async () => ((await fetch(`http://127.0.0.1:${FIXED_PORTS.admin}/ready`)).ok ? true : undefined)).catch((err: Error) => {
      throw new Error(`${err.message}\n${c!.logs()}`);
    });
    say(`stack up ${seconds(began)} after the test began`);
  }, 1_200_000);

  afterAll(async () => {
    const t = Date.now();
    try {
      c?.(['down', '--volumes', '--remove-orphans', '--timeout', '5']);
    } finally {
      await engine?.stop();
      if (dir) rmSync(dir, { recursive: true, force: true });
    }
    say(`stack down${engine?.startedHere ? ', dockerd stopped' : ''} in ${seconds(t)}`);
  }, 120_000);

  it('serves the local topology: the ports the compose file gives the server and the model are envoy/local-stack.ts FIXED_PORTS', () => {
    const file = parse(readFileSync(COMPOSE_FILE, 'utf8')) as { services: Record<string, { command: string[] }> };
    const authz = file.services.authz!.command;
    expect(authz[authz.indexOf('--listen') + 1]).toBe(`127.0.0.1:${FIXED_PORTS.authz}`);
    expect(authz[authz.indexOf('--metrics') + 1]).toBe(`127.0.0.1:${FIXED_PORTS.metrics}`);
    expect(file.services.model!.command.join(' ')).toContain(`startModelServer(${FIXED_PORTS.model}, '127.0.0.1')`);
    expect(file.services.envoy!.command).toContain('envoy/envoy.yaml');
  });

  it('builds a small server image with only what runs: no shell, under the size budget', () => {
    const size = Number(docker(engine!, ['image', 'inspect', '-f', '{{.Size}}', SERVER_IMAGE]).trim());
    const images = docker(engine!, ['image', 'ls', '--filter', 'dangling=false', '--format', '{{.Repository}}:{{.Tag}}  {{.Size}}']).trim();
    say(`${SERVER_IMAGE}: ${mb(size)}; the tagged images:\n${images.replace(/^/gm, '      ')}`);
    expect(size / 1e6).toBeLessThan(SERVER_IMAGE_BUDGET_MB);
    const sh = run('docker', ['run', '--rm', '--network', 'none', '--entrypoint', '/bin/sh', SERVER_IMAGE, '-c', 'true'], engine!.env);
    expect(sh.status, 'the final image must have no shell').not.toBe(0);
    expect(sh.stderr).toMatch(/no such file or directory/i);
  });

  it('plays the demo scene against the containers and every call gets its expected status and reason', async () => {
    // Compose runs one Envoy and no rate-limit service or Redis: the scene leaves out its two-replica rows
    // (given no replicas), and no other row is covered by a global budget, so none calls the service.
    const rows = await playScene({ ports: FIXED_PORTS, pki, tokens });
    expect(rows.map((x) => [x.caller, x.user, x.status, x.reason]), c!.logs()).toEqual(EXPECTED_SINGLE_ENVOY_ROWS);
    expect(rows.every((x) => x.ok)).toBe(true);
  });

  it('runs the server as the Deployment does: uid 65532, read-only root file system, no capabilities, no new privileges', () => {
    const probe = `
      const fs = require('fs');
      const status = Object.fromEntries(fs.readFileSync('/proc/1/status', 'utf8').trim().split('\\n').map((l) => l.split(/:\\s*/, 2)));
      const root = fs.readFileSync('/proc/1/mountinfo', 'utf8').split('\\n').map((l) => l.split(' ')).find((f) => f[4] === '/');
      const writes = {};
      for (const p of ['/app/probe', '/probe', '/etc/infergate/probe']) {
        try { fs.writeFileSync(p, 'x'); writes[p] = 'written'; } catch (e) { writes[p] = e.code; }
      }
      process.stdout.write(JSON.stringify({ cmdline: fs.readFileSync('/proc/1/cmdline', 'utf8').split('\\0').join(' '), status, rootMountOptions: root[5].split(','), writes }));`;
    const view = JSON.parse(docker(engine!, ['exec', c!.id('authz'), '/usr/local/bin/node', '-e', probe])) as ProcessView;
    expect(view.cmdline).toContain('/app/dist/ext-authz/src/cli.js');
    const ids = `${RUN_AS}\t${RUN_AS}\t${RUN_AS}\t${RUN_AS}`;
    expect(view.status.Uid).toBe(ids);
    expect(view.status.Gid).toBe(ids);
    for (const set of ['CapInh', 'CapPrm', 'CapEff', 'CapBnd', 'CapAmb']) expect(view.status[set], set).toBe(ZERO_CAPS);
    expect(view.status.NoNewPrivs).toBe('1');
    expect(view.rootMountOptions).toContain('ro');
    expect(view.writes).toEqual({ '/app/probe': 'EROFS', '/probe': 'EROFS', '/etc/infergate/probe': 'EROFS' });
  });

  it('runs Envoy and the model hardened too: non-root, read-only root file system, no capabilities, no new privileges', () => {
    for (const service of ['envoy', 'model']) {
      const [config] = JSON.parse(docker(engine!, ['inspect', c!.id(service)])) as Array<{
        Config: { User: string };
        HostConfig: { ReadonlyRootfs: boolean; CapDrop: string[] | null; CapAdd: string[] | null; SecurityOpt: string[] | null; Privileged: boolean };
      }>;
      expect({ service, user: config!.Config.User, ...config!.HostConfig }).toMatchObject({
        service, user: `${RUN_AS}:${RUN_AS}`, ReadonlyRootfs: true, CapDrop: ['ALL'], CapAdd: null, SecurityOpt: ['no-new-privileges:true'], Privileged: false,
      });
    }
  });

  it('reports the server healthy through the image HEALTHCHECK (/readyz), which compose waits for before starting Envoy', () => {
    const health = JSON.parse(docker(engine!, ['inspect', '-f', '{{json .State.Health}}', c!.id('authz')])) as { Status: string; Log: Array<{ ExitCode: number }> };
    expect(health.Status).toBe('healthy');
    expect(health.Log.at(-1)?.ExitCode).toBe(0);
  });

  it('applies a manifest edit made on the host to the container\'s decisions', async () => {
    const frontend = WORKLOADS['web-frontend'];
    const predict = async (): Promise<{ status: number; reason: unknown }> => {
      const r = await mtlsRequest(FIXED_PORTS.envoy, pki.caCert, pki.client('web-frontend'), {
        method: 'POST', path: '/v1/models/sentiment:predict', body: JSON.stringify({ instances: [[1]] }), headers: { 'content-type': 'application/json' },
      });
      return { status: r.status, reason: r.headers['x-infergate-reason'] };
    };
    expect((await predict()).status).toBe(403);
    // As an editor saves: a new file renamed over the old one (a new inode, which a
    // bind mount of the file itself would never show the container).
    const file = join(manifestDir, 'manifest.yaml');
    const doc = parse(readFileSync(file, 'utf8')) as { rules: Array<{ name: string; callers: string[] }> };
    doc.rules.find((r) => r.name === 'batch-scoring')!.callers.push(frontend);
    writeFileSync(`${file}.new`, stringify(doc));
    chmodSync(`${file}.new`, 0o644);
    renameSync(`${file}.new`, file);
    const t = Date.now();
    await until('web-frontend to be allowed after the manifest edit', 10_000, async () => ((await predict()).status === 200 ? true : undefined)).catch((err: Error) => {
      throw new Error(`${err.message}\n${c!.logs()}`);
    });
    say(`manifest edit reached the container's decisions in ${seconds(t)}`);
  });
});
