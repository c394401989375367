import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { REPO_ROOT as ROOT, requireFile } from '../../ext-authz/src/repo-root.js';
import { rawGet } from './raw-http.js';

/**
 * The echo backends: one real HTTP server per common backend family, each in
 * its default configuration, answering every request it routes with 200
 * {"path": <the path its router matches on>} and logging one JSON line
 * {"host", "path"} per such request on stdout (so a test can tell whether a
 * request reached it). Whatever the framework refuses or redirects by itself
 * is left to it. scripts/setup-backends.sh installs and builds them.
 */

export type BackendName = 'tomcat' | 'jetty' | 'netty' | 'uvicorn' | 'uvicorn-h11' | 'werkzeug' | 'go' | 'nginx' | 'node';

export interface BackendInfo {
  readonly name: BackendName;
  /** What it is and what it reports, for the evidence table. */
  readonly what: string;
  /**
   * 'decoded': the router matches the percent-decoded path. 'raw': it
   * matches the path as sent (Express's router runs its route regexps over
   * the undecoded pathname).
   */
  readonly routesOn: 'decoded' | 'raw';
  /** Strips `;params` from each segment (servlet containers). */
  readonly servlet: boolean;
}

export const BACKENDS: readonly BackendInfo[] = [
  { name: 'tomcat', what: 'Tomcat 11.0.27 embedded, servlet at /*, servletPath+pathInfo', routesOn: 'decoded', servlet: true },
  { name: 'jetty', what: 'Jetty 12.1.14 ee10, servlet at /*, servletPath+pathInfo', routesOn: 'decoded', servlet: true },
  { name: 'netty', what: 'Netty 4.2.20 HTTP codec, QueryStringDecoder.path() (TorchServe)', routesOn: 'decoded', servlet: false },
  { name: 'uvicorn', what: 'uvicorn 0.54.0 (httptools, its default when installed), ASGI scope["path"] (Starlette/FastAPI, vLLM, KServe)', routesOn: 'decoded', servlet: false },
  { name: 'uvicorn-h11', what: 'uvicorn 0.54.0 --http h11, ASGI scope["path"]', routesOn: 'decoded', servlet: false },
  { name: 'werkzeug', what: 'werkzeug 3.1.9 dev server (threaded, as flask run), PATH_INFO as its router reads it', routesOn: 'decoded', servlet: false },
  { name: 'go', what: 'Go net/http, ServeMux handler at "/", r.URL.Path', routesOn: 'decoded', servlet: false },
  { name: 'nginx', what: 'nginx (Debian), location / { return 200 $uri }', routesOn: 'decoded', servlet: false },
  { name: 'node', what: 'Node http, raw req.url pathname (Express)', routesOn: 'raw', servlet: false },
];

export interface Seen {
  readonly host: string;
  readonly path: string;
}

export interface Backend extends BackendInfo {
  readonly port: number;
  /** Requests that reached the handler, in order. */
  seen(): Seen[];
  logs(): string;
  stop(): Promise<void>;
}

const SETUP_HINT = 'run `bash scripts/setup-backends.sh` (part of `make setup`)';
const TOOLS = join(ROOT, '.tools');

function onPath(cmd: string, extra: string[] = []): string | null {
  for (const dir of [...(process.env.PATH ?? '').split(delimiter), ...extra]) {
    if (dir && existsSync(join(dir, cmd))) return join(dir, cmd);
  }
  return null;
}

function requireCommand(cmd: string, hint: string, extra: string[] = []): string {
  const found = onPath(cmd, extra);
  if (found === null) throw new Error(`${cmd} is missing: ${hint}`);
  return found;
}

interface Launch {
  readonly cmd: string;
  readonly args: string[];
  readonly env?: Record<string, string>;
  /** Set when the server cannot report its port: it was told this one. */
  readonly fixedPort?: number;
  /** Where its per-request lines go, when not stdout. */
  readonly seenFile?: string;
  readonly cleanup?: () => void;
}

function java(server: 'tomcat' | 'jetty' | 'netty'): Launch {
  const dir = join(TOOLS, 'backends', 'java', server);
  requireFile(join(dir, 'classes', '.stamp'), SETUP_HINT);
  const main = `${server[0]!.toUpperCase()}${server.slice(1)}Echo`;
  const cmd = requireCommand('java', 'install a Java 17+ runtime (Debian: apt-get install openjdk-17-jdk-headless)');
  // Its own temp dir (Tomcat puts its base dir there), removed when it stops.
  const temp = mkdtempSync(join(tmpdir(), `infergate-${server}-echo-`));
  return {
    cmd,
    // Small heaps and no JIT tiers beyond C1: nine servers share two cores during the test.
    args: ['-Xmx128m', '-XX:TieredStopAtLevel=1', '-XX:+UseSerialGC', `-Djava.io.tmpdir=${temp}`, '-cp', `${join(dir, 'classes')}${delimiter}${join(dir, 'lib', '*')}`, main, '0'],
    cleanup: () => rmSync(temp, { recursive: true, force: true }),
  };
}

function python(script: string, extra: string[] = []): Launch {
  const site = requireFile(join(TOOLS, 'python-backends', '.stamp'), SETUP_HINT).replace(/\/\.stamp$/, '');
  return {
    cmd: requireCommand('python3', 'install Python 3.10+ (Debian: apt-get install python3)'),
    args: [join(ROOT, 'test', 'backends', 'python', script), '0', ...extra],
    env: { PYTHONPATH: site, PYTHONDONTWRITEBYTECODE: '1' },
  };
}

async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', () => resolve()));
  const port = (srv.address() as AddressInfo).port;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}

/**
 * nginx as a foreground process on a generated config in a temp prefix.
 * Everything path-related is left at nginx's defaults (merge_slashes on);
 * `$uri` is the normalised, decoded URI that locations are matched on.
 * `return` cannot JSON-escape, so the body is `{"path":"$uri"}` verbatim
 * (see routedPath); the access log, which can escape, feeds seen(). (It
 * goes to a file: nginx cannot open /dev/stdout when that is a socket.)
 */
async function nginx(): Promise<Launch> {
  const bin = requireCommand('nginx', 'apt-get install nginx (as root; scripts/setup-backends.sh does it)', ['/usr/sbin', '/usr/local/sbin']);
  const prefix = mkdtempSync(join(tmpdir(), 'infergate-nginx-'));
  mkdirSync(join(prefix, 'logs'));
  const port = await freePort();
  const temp = ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((t) => `  ${t}_temp_path ${join(prefix, t)};`).join('\n');
  writeFileSync(
    join(prefix, 'nginx.conf'),
    `daemon off;
worker_processes 1;
pid ${join(prefix, 'nginx.pid')};
error_log stderr warn;
events { worker_connections 512; }
http {
${temp}
  log_format seen escape=json '{"host":"$host","path":"$uri"}';
  access_log ${join(prefix, 'seen.log')} seen;
  default_type application/json;
  server {
    listen 127.0.0.1:${port};
    location / { return 200 '{"path":"$uri"}'; }
  }
}
`,
  );
  return { cmd: bin, args: ['-p', prefix, '-c', join(prefix, 'nginx.conf'), '-e', 'stderr'], fixedPort: port, seenFile: join(prefix, 'seen.log'), cleanup: () => rmSync(prefix, { recursive: true, force: true }) };
}

async function launchFor(name: BackendName): Promise<Launch> {
  switch (name) {
    case 'tomcat':
    case 'jetty':
    case 'netty':
      return java(name);
    case 'uvicorn':
      return python('asgi_echo.py');
    case 'uvicorn-h11':
      return python('asgi_echo.py', ['--http', 'h11']);
    case 'werkzeug':
      return python('wsgi_echo.py');
    case 'go':
      return { cmd: requireFile(join(TOOLS, 'backends', 'go-echo'), SETUP_HINT), args: ['0'] };
    case 'nginx':
      return nginx();
    case 'node':
      // Node 22 before 22.18 strips types only when asked to.
      return { cmd: process.execPath, args: [...(process.features.typescript ? [] : ['--experimental-strip-types']), join(ROOT, 'test', 'backends', 'node', 'echo.ts'), '0'] };
  }
}

async function waitForPort(port: number, deadline: number, gone: () => boolean): Promise<boolean> {
  while (Date.now() < deadline && !gone()) {
    const reply = await rawGet(port, '/', 'startup-probe', 500);
    if (reply.status !== 0) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}

/** Starts one backend and waits until it serves (up to `timeoutMs`: JVMs on a busy 2-core machine are slow). */
export async function startBackend(name: BackendName, timeoutMs = 30_000): Promise<Backend> {
  const info = BACKENDS.find((b) => b.name === name)!;
  const launch = await launchFor(name);
  const child: ChildProcess = spawn(launch.cmd, launch.args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...launch.env } });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString('utf8')));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString('utf8')));
  let exited: number | null = null;
  const exit = new Promise<void>((resolve) => {
    child.on('exit', (code) => ((exited = code ?? -1), resolve()));
    child.on('error', (e) => ((err += `${e.message}\n`), (exited = -1), resolve()));
  });
  const stop = async (): Promise<void> => {
    if (exited === null) {
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 3000);
      await exit;
      clearTimeout(t);
    }
    launch.cleanup?.();
  };
  const deadline = Date.now() + timeoutMs;
  let port = launch.fixedPort ?? 0;
  while (port === 0 && exited === null && Date.now() < deadline) {
    const m = /^listening (\d+)$/m.exec(out);
    if (m) port = Number(m[1]);
    else await new Promise((r) => setTimeout(r, 25));
  }
  if (port === 0 || exited !== null || !(await waitForPort(port, deadline, () => exited !== null))) {
    await stop();
    throw new Error(`${name} echo backend did not start (${launch.cmd} ${launch.args.join(' ')}):\n${out}\n${err}`);
  }
  const seen = (): Seen[] =>
    (launch.seenFile === undefined ? out : existsSync(launch.seenFile) ? readFileSync(launch.seenFile, 'utf8') : '')
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Seen)
      .filter((s) => s.host !== 'startup-probe');
  return { ...info, port, seen, logs: () => `${out}\n${err}`, stop };
}

/**
 * The path the backend says it routed on, from a 200 body. nginx's body is
 * `{"path":"$uri"}` unescaped (a `"` or `\` in the path would break JSON), so
 * for it the text between the fixed frame is taken verbatim.
 */
export function routedPath(name: BackendName, body: Buffer): string {
  const text = new TextDecoder('utf-8').decode(body);
  if (name === 'nginx') {
    const m = /^\{"path":"([\s\S]*)"\}$/.exec(text);
    if (m) return m[1]!;
  }
  return (JSON.parse(text) as { path: string }).path;
}
