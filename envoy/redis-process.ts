import { execFileSync } from 'node:child_process';
import { connect } from 'node:net';
import { freePort, startService, type ServiceProcess } from './service-process.js';

export interface RedisProcess extends ServiceProcess {
  readonly port: number;
  /** A fresh server on the same port (its data gone, as after a crash without persistence). */
  restart(): Promise<RedisProcess>;
}

function redisBinary(): string {
  try {
    return execFileSync('sh', ['-c', 'command -v redis-server'], { encoding: 'utf8' }).trim();
  } catch {
    throw new Error('redis-server is missing: apt-get install redis-server (make setup installs it)');
  }
}

function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    let answer = '';
    s.setTimeout(500, () => (s.destroy(), resolve(false)));
    s.on('error', () => resolve(false));
    s.on('connect', () => s.write('PING\r\n'));
    s.on('data', (d) => {
      answer += d.toString();
      if (answer.includes('\r\n')) {
        s.destroy();
        resolve(answer.startsWith('+PONG'));
      }
    });
  });
}

/**
 * Redis for the rate-limit service, on loopback, in memory only (no RDB, no
 * AOF), as the counters of a rate-limit window need no persistence.
 */
export async function startRedis(port?: number): Promise<RedisProcess> {
  const p = port ?? (await freePort());
  const proc = await startService(
    'redis-server',
    redisBinary(),
    ['--port', String(p), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--protected-mode', 'yes', '--loglevel', 'warning'],
    {},
    () => ping(p),
  );
  return { ...proc, port: p, restart: () => startRedis(p) };
}
