import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { USAGE, parseCliArgs } from '../../ext-authz/src/cli-args.js';
import { availableCpus } from '../../ext-authz/src/cpu-count.js';
import { EXAMPLE_MANIFEST, ROOT, requireBundle, requireTool } from '../helpers/paths.js';

describe('infergate-authz flags', () => {
  it('applies defaults', () => {
    const p = parseCliArgs([]);
    expect(p).toMatchObject({ help: false, check: false, options: { listen: '127.0.0.1:9191', metricsListen: '127.0.0.1:9464', cacheSize: 10000, cacheTtlSeconds: 30, dryRun: false, watch: true, trustXfcc: false } });
  });

  it('runs as many workers as the CPUs the process may use, unless told', () => {
    const p = parseCliArgs([]);
    expect(p.help === false && p.options.workers).toBe(availableCpus().cpus);
    const one = parseCliArgs(['--workers', '1']);
    expect(one.help === false && one.options.workers).toBe(1);
  });

  it('reads every documented flag', () => {
    const p = parseCliArgs([
      '--manifest', 'm.yaml', '--bundle', 'b.tar.gz', '--listen', '0.0.0.0:9000', '--socket', '/tmp/a.sock', '--metrics', 'off',
      '--dry-run', '--cache-size', '0', '--cache-ttl', '5', '--input-header', 'X-Tenant', '--input-header', 'x-model',
      '--trust-xfcc', '--decision-log', 'off', '--log-level', 'debug', '--no-watch', '--workers', '3',
    ]);
    expect(p).toEqual({
      help: false,
      check: false,
      options: expect.objectContaining({
        manifestPath: 'm.yaml', bundlePath: 'b.tar.gz', listen: '0.0.0.0:9000', socket: '/tmp/a.sock', metricsListen: null, dryRun: true,
        cacheSize: 0, cacheTtlSeconds: 5, inputHeaders: ['x-tenant', 'x-model'], trustXfcc: true, decisionLog: 'off', logLevel: 'debug', watch: false,
        workers: 3,
      }),
    });
  });

  it.each([
    [['--listen', '9191'], '--listen: expected HOST:PORT, got "9191"'],
    [['--listen', 'localhost:70000'], '--listen: expected HOST:PORT, got "localhost:70000"'],
    [['--cache-size=-1'], '--cache-size: expected a whole number from 0 to 10000000, got "-1"'],
    [['--cache-ttl', '1.5'], '--cache-ttl: expected a whole number from 0 to 86400, got "1.5"'],
    [['--log-level', 'loud'], '--log-level: expected one of fatal, error, warn, info, debug, trace, silent, got "loud"'],
    [['--input-header', 'bad header'], '--input-header: "bad header" is not a header name'],
    [['--listen', 'off'], '--listen off needs --socket PATH'],
    [['--frobnicate'], "Unknown option '--frobnicate'"],
    [['positional'], "Unexpected argument 'positional'"],
    [['--otlp-endpoint', 'collector:4318'], '--otlp-endpoint: expected an http(s) URL, got "collector:4318"'],
    [['--otlp-endpoint', 'ftp://c/v1/traces'], '--otlp-endpoint: expected an http(s) URL, got "ftp://c/v1/traces"'],
    [['--otlp-endpoint', 'http://c:4318/v1/traces', '--trace-ratio', '1.5'], '--trace-ratio: expected a number from 0 to 1, got "1.5"'],
    [['--otlp-endpoint', 'http://c:4318/v1/traces', '--trace-ratio', 'half'], '--trace-ratio: expected a number from 0 to 1, got "half"'],
    [['--trace-ratio', '0.5'], '--trace-ratio needs --otlp-endpoint URL'],
    [['--workers', '0'], '--workers: expected a whole number from 1 to 256, got "0"'],
    [['--workers', 'auto'], '--workers: expected a whole number from 1 to 256, got "auto"'],
    [['--workers', '257'], '--workers: expected a whole number from 1 to 256, got "257"'],
  ])('rejects %j with %j', (argv, message) => {
    expect(() => parseCliArgs(argv)).toThrow(message);
  });

  it('turns tracing on only with an OTLP endpoint', () => {
    const on = parseCliArgs(['--otlp-endpoint', 'http://c:4318/v1/traces', '--trace-ratio', '0.25']);
    expect(on.help === false && on.options.tracing).toEqual({ endpoint: 'http://c:4318/v1/traces', ratio: 0.25 });
    const off = parseCliArgs([]);
    expect(off.help === false && off.options.tracing).toBeNull();
  });

  it('documents every flag it accepts in --help', () => {
    for (const flag of ['--manifest', '--bundle', '--listen', '--socket', '--metrics', '--dry-run', '--cache-size', '--cache-ttl', '--log-level', '--input-header', '--trust-xfcc', '--decision-log', '--no-watch', '--otlp-endpoint', '--trace-ratio', '--workers', '--check']) {
      expect(USAGE).toContain(flag);
    }
  });
});

describe('the infergate-authz bin (built, run with plain node)', () => {
  let cli: string;
  let dir: string;
  const run = (args: string[]) => spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', timeout: 15_000 });

  beforeAll(() => {
    cli = requireTool(`${ROOT}dist/ext-authz/src/cli.js`, 'run `make setup` to build the TypeScript');
    dir = mkdtempSync(join(tmpdir(), 'infergate-cli-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('is what the package bin infergate-authz points at, with a node shebang', async () => {
    const { readFileSync } = await import('node:fs');
    const pkg = JSON.parse(readFileSync(`${ROOT}package.json`, 'utf8')) as { bin: Record<string, string> };
    expect(`${ROOT}${pkg.bin['infergate-authz']}`).toBe(cli);
    expect(readFileSync(cli, 'utf8').startsWith('#!/usr/bin/env node\n')).toBe(true);
  });

  it('prints help and exits 0', () => {
    const r = run(['--help']);
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('Usage: infergate-authz');
  });

  it('validates a manifest and the bundle with --check', () => {
    const r = run(['--check', '--manifest', EXAMPLE_MANIFEST, '--bundle', requireBundle()]);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('ok\n');
    expect(r.status).toBe(0);
  });

  it('fails a bad flag with one line and exit code 2', () => {
    const r = run(['--cache-size', 'lots']);
    expect(r.status).toBe(2);
    expect(r.stderr).toBe('infergate-authz: --cache-size: expected a whole number from 0 to 10000000, got "lots" (see --help)\n');
  });

  it('fails a bad manifest with one line naming file, problem and place, and exit code 1', () => {
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, 'trustDomains: [cluster.local]\nrules:\n  - name: a\n    callers: [spiffe://cluster.local/ns/a/sa/b]\n    paths: ["/v1/**/x"]\n');
    const r = run(['--manifest', bad, '--listen', '127.0.0.1:0', '--metrics', 'off']);
    expect(r.status).toBe(1);
    expect(r.stderr).toBe('infergate-authz: bad.yaml: bad path glob "/v1/**/x": ** is only allowed as a trailing /** (rules[0].paths[0])\n');
  });

  it.each(['1', '2'])('fails a --listen address in use with exit code 1 and a last line naming it, with --workers %s', async (workers) => {
    const { createServer } = await import('node:net');
    const taken = createServer();
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', () => r()));
    const port = (taken.address() as { port: number }).port;
    try {
      const r = await new Promise<{ status: number | null; stderr: string }>((resolve) => {
        const c = spawn(process.execPath, [cli, '--listen', `127.0.0.1:${port}`, '--metrics', 'off', '--workers', workers], { stdio: ['ignore', 'ignore', 'pipe'] });
        let stderr = '';
        c.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
        c.on('exit', (status) => resolve({ status, stderr }));
      });
      expect(r.status).toBe(1);
      expect(r.stderr.trim().split('\n').pop()).toMatch(new RegExp(`^infergate-authz: cannot listen on 127\\.0\\.0\\.1:${port}: .*EADDRINUSE`));
    } finally {
      taken.close();
    }
  });

  it('fails a missing bundle with one line and exit code 1', () => {
    const r = run(['--bundle', join(dir, 'nope.tar.gz'), '--listen', '127.0.0.1:0', '--metrics', 'off']);
    expect(r.status).toBe(1);
    expect(r.stderr).toBe('infergate-authz: nope.tar.gz: cannot read bundle: ENOENT\n');
  });
});
