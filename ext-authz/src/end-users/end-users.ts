import { join } from 'node:path';
import type { Logger } from 'pino';
import type { CompiledCallers } from '../manifest.js';
import { fileKeySet, parseJwks, RemoteKeySet, type KeySet } from './key-sets.js';
import type { EndUsersConfig } from './manifest.js';
import { TokenVerifier } from './token-verifier.js';

/** What one policy revision uses to verify end users. */
export interface EndUsers {
  readonly config: EndUsersConfig;
  readonly verifier: TokenVerifier;
}

/** The JWKS files a manifest names, as absolute paths (they are relative to the manifest's directory). */
export function jwksFiles(cfg: EndUsersConfig, manifestDir: string): string[] {
  return cfg.issuers.flatMap((i) => ('file' in i.jwks ? [join(manifestDir, i.jwks.file)] : []));
}

/**
 * Remote key sets outlive policy revisions: a manifest edit must not refetch
 * every issuer's keys, and a verifier from any revision sees the current
 * keys. A set no revision uses any more is closed.
 */
export class RemoteKeySets {
  private readonly sets = new Map<string, RemoteKeySet>();

  constructor(private readonly log: Logger, private readonly onChange: () => void) {}

  async get(jwks: { url: string; refresh_seconds: number; max_stale_seconds: number }): Promise<RemoteKeySet> {
    const key = `${jwks.url}|${jwks.refresh_seconds}|${jwks.max_stale_seconds}`;
    let set = this.sets.get(key);
    if (set === undefined) {
      set = new RemoteKeySet({ url: jwks.url, refreshMs: jwks.refresh_seconds * 1000, maxStaleMs: jwks.max_stale_seconds * 1000, log: this.log, onChange: this.onChange });
      this.sets.set(key, set);
      await set.start();
    }
    return set;
  }

  /** Closes the sets the given configs (the one in force) do not use. */
  retain(cfg: EndUsersConfig | null): void {
    const used = new Set((cfg?.issuers ?? []).flatMap((i) => ('url' in i.jwks ? [`${i.jwks.url}|${i.jwks.refresh_seconds}|${i.jwks.max_stale_seconds}`] : [])));
    for (const [key, set] of this.sets) {
      if (!used.has(key)) {
        set.close();
        this.sets.delete(key);
      }
    }
  }

  close(): void {
    this.retain(null);
  }
}

/** Builds a revision's verifier: file keys from the texts read with the manifest, remote keys from the shared sets. */
export async function buildEndUsers(cfg: EndUsersConfig, manifestDir: string, fileTexts: ReadonlyMap<string, string>, remote: RemoteKeySets): Promise<EndUsers> {
  const keySets = new Map<string, KeySet>();
  for (const i of cfg.issuers) {
    if ('file' in i.jwks) {
      const path = join(manifestDir, i.jwks.file);
      keySets.set(i.issuer, fileKeySet(parseJwks(fileTexts.get(path)!, i.jwks.file)));
    } else {
      keySets.set(i.issuer, await remote.get(i.jwks));
    }
  }
  return { config: cfg, verifier: new TokenVerifier(cfg, keySets) };
}

/** Whether a SPIFFE ID is one of the workloads allowed to act for end users. */
export function isDelegate(delegates: CompiledCallers, id: string): boolean {
  if (delegates.exact[id] === true) return true;
  for (const p of delegates.prefixes) if (id.startsWith(p)) return true;
  return false;
}
