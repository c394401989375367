import { existsSync, readFileSync, readdirSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import type { CheckResponse } from '../../ext-authz/src/check-response.js';
import { authorizationClient } from '../../ext-authz/src/protos.js';
import type { AuthzClient } from '../helpers/authz-client.js';

export const GATEWAY = 'spiffe://cluster.local/ns/gateway/sa/api-gateway';
export const PREDICT = '/v1/models/bert:predict';

/**
 * `n` clients, each on a connection of its own (grpc-js would otherwise
 * share one connection between clients of the same address). The server's
 * workers share connections out in turn, so n ≥ workers reaches them all.
 */
export function separateClients(address: string, n: number): AuthzClient[] {
  const Client = authorizationClient();
  return Array.from({ length: n }, () => {
    const c = new Client(address, grpc.credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1 });
    return {
      check: (req: unknown) =>
        new Promise<CheckResponse>((resolve, reject) => {
          (c as unknown as { Check: (r: unknown, cb: (e: Error | null, res: CheckResponse) => void) => void }).Check(req, (e, res) => (e ? reject(e) : resolve(res)));
        }),
      close: () => c.close(),
    };
  });
}

export function reasonOf(res: CheckResponse): string {
  const denied = (res as { denied_response?: { headers?: Array<{ header: { key: string; value: string } }> } }).denied_response;
  return denied?.headers?.find((h) => h.header.key === 'x-infergate-reason')?.header.value ?? 'allowed';
}

/** The server's start-up line ("infergate-authz serving"), parsed. */
export function servingLine(logs: string): Record<string, unknown> {
  const line = logs.split('\n').find((l) => l.includes('"infergate-authz serving"'));
  if (line === undefined) throw new Error(`no start-up line in:\n${logs}`);
  return JSON.parse(line) as Record<string, unknown>;
}

/** Operational log lines with this message. */
export function logLines(logs: string, msg: string): Array<Record<string, unknown>> {
  return logs.split('\n').filter((l) => l.startsWith('{') && l.includes(`"msg":"${msg}"`)).map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** The decision log so far, one parsed object per line (a torn or merged line fails the parse). */
export function decisionLines(file: string): Array<Record<string, unknown>> {
  if (!existsSync(file)) return [];
  const text = readFileSync(file, 'utf8');
  // A line still being written has no newline yet.
  return text.slice(0, text.lastIndexOf('\n') + 1).split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** The process ids of `pid`'s children, from /proc. */
export function childPids(pid: number): number[] {
  const tasks = `/proc/${pid}/task`;
  if (!existsSync(tasks)) return [];
  return readdirSync(tasks).flatMap((t) => readFileSync(`${tasks}/${t}/children`, 'utf8').trim().split(/\s+/).filter((s) => s !== '').map(Number));
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
