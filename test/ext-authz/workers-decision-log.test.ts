import { spawn, spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { httpCheck } from '../helpers/authz-client.js';
import { EXAMPLE_MANIFEST, ROOT, requireBundle, requireTool } from '../helpers/paths.js';
import { GATEWAY, reasonOf, separateClients } from './workers-helpers.js';

// Longer than PIPE_BUF (4096 bytes), the most a pipe write is atomic for:
// each decision line carries its path, so every line is about 6 KiB.
const LONG = `/v1/models/${'m'.repeat(6000)}`;
const PER_CONNECTION = 200;

/**
 * A log reader that takes 512 bytes at a time, as a slow log shipper might:
 * the pipe stays full and each read frees little room, so a writer's long
 * write is done in several pieces, between which another process's write
 * could land. Reads the named pipe its first argument names into the file
 * its second names.
 */
const SLOW_READER = `
const fs = require('node:fs');
const input = fs.openSync(process.argv[1], 'r');
const out = fs.openSync(process.argv[2], 'w');
const buf = Buffer.alloc(512);
for (;;) {
  let n;
  try { n = fs.readSync(input, buf, 0, buf.length, null); } catch (e) {
    if (e.code !== 'EAGAIN') throw e;
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1);
    continue;
  }
  if (n === 0) break;
  fs.writeSync(out, buf, 0, n);
}`;

describe('the decision log on stdout, a pipe, with --workers 2 under load', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'infergate-workers-stdout-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('holds one whole JSON line per check, from both workers, none torn or interleaved', async () => {
    const cli = requireTool(`${ROOT}dist/ext-authz/src/cli.js`, 'run `make setup` to build the TypeScript');
    const out = join(dir, 'stdout');
    // A named pipe, because stdio 'pipe' would give the server a socket pair, which is not what a shell pipeline or a container runtime gives it.
    const fifo = join(dir, 'stdout.fifo');
    const mkfifo = spawnSync(requireTool('/usr/bin/mkfifo', 'install coreutils (apt-get install coreutils)'), [fifo]);
    expect(mkfifo.status).toBe(0);
    const reader = spawn(process.execPath, ['-e', SLOW_READER, fifo, out], { stdio: ['ignore', 'ignore', 'inherit'] });
    const readerDone = new Promise<void>((resolve) => reader.on('exit', () => resolve()));
    // Read-write, so the open does not wait for the reader (Linux); the server only writes to it.
    const writeEnd = openSync(fifo, 'r+');
    const child = spawn(process.execPath, [
      cli, '--workers', '2', '--listen', '127.0.0.1:0', '--metrics', 'off', '--bundle', requireBundle(), '--manifest', EXAMPLE_MANIFEST,
      '--decision-log', 'stdout', '--no-watch', '--cache-size', '0',
    ], { stdio: ['ignore', writeEnd, 'pipe'] });
    // The server's processes hold the write end now; the reader sees the end of it when they have all exited.
    closeSync(writeEnd);
    let stderr = '';
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    try {
      await expect.poll(() => stderr.includes('"infergate-authz serving"'), { timeout: 15_000 }).toBe(true);
      const port = Number(/"grpc":"127\.0\.0\.1:(\d+)"/.exec(stderr)![1]);
      const clients = separateClients(`127.0.0.1:${port}`, 4);
      // All at once on every connection, so both workers write as fast as they decide.
      const results = await Promise.all(clients.flatMap((c, conn) => Array.from({ length: PER_CONNECTION }, (_v, i) =>
        c.check(httpCheck(GATEWAY, 'POST', `${LONG}-${conn}-${i}:predict`, undefined, { 'x-request-id': `long-${conn}-${i}` })))));
      expect(results.map(reasonOf)).toEqual(results.map(() => 'allowed'));
      for (const c of clients) c.close();
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
    await readerDone;
    const lines = readFileSync(out, 'utf8').split('\n');
    expect(lines.pop()).toBe('');
    const parsed = lines.map((l, i) => {
      try {
        return JSON.parse(l) as Record<string, unknown>;
      } catch {
        throw new Error(`line ${i} is not one JSON object: ${l.slice(0, 120)}…${l.slice(-120)}`);
      }
    });
    expect(parsed).toHaveLength(4 * PER_CONNECTION);
    // Each line whole: its path is the one its request id was sent with.
    for (const l of parsed) expect(l.path).toBe(`${LONG}-${String(l.request_id).slice('long-'.length)}:predict`);
    expect(new Set(parsed.map((l) => l.worker))).toEqual(new Set([1, 2]));
    expect(new Set(parsed.map((l) => l.request_id)).size).toBe(4 * PER_CONNECTION);
  });
});
