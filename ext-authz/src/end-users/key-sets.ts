import { createLocalJWKSet, type JSONWebKeySet, type JWTVerifyGetKey } from 'jose';
import type { Logger } from 'pino';
import { AuthzError, REASONS, errorMessage } from '../errors.js';

/** Where an issuer's verification keys come from. */
export interface KeySet {
  readonly getKey: JWTVerifyGetKey;
  /** Asks for fresh keys soon (a token named a key this set does not have). */
  unknownKey(): void;
}

/** A JWKS document's shape, checked before jose reads it, so a bad file is an error naming the file. */
export function parseJwks(text: string, where: string): JSONWebKeySet {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new Error(`${where}: not JSON: ${errorMessage(err)}`);
  }
  const keys = (doc as { keys?: unknown } | null)?.keys;
  if (!Array.isArray(keys) || keys.length === 0 || !keys.every((k) => k !== null && typeof k === 'object' && typeof (k as { kty?: unknown }).kty === 'string')) {
    throw new Error(`${where}: expected {"keys": [...]} with at least one JWK`);
  }
  return doc as JSONWebKeySet;
}

/** Keys from a JWKS file: read with the manifest, so an edit to it is a new policy revision. */
export function fileKeySet(jwks: JSONWebKeySet): KeySet {
  return { getKey: createLocalJWKSet(jwks), unknownKey: () => undefined };
}

export interface RemoteOptions {
  readonly url: string;
  readonly refreshMs: number;
  /** How long past a refresh that failed the last good keys still verify; after that, fail closed. */
  readonly maxStaleMs: number;
  readonly log: Logger;
  /** Called when the fetched keys differ from the ones before (verified-token caches drop their entries). */
  readonly onChange: () => void;
  readonly fetch?: typeof fetch;
  readonly now?: () => number;
}

const FETCH_TIMEOUT_MS = 5000;
/** An unknown kid triggers a refresh at most this often, so forged kids cannot flood the issuer. */
const UNKNOWN_KEY_COOLDOWN_MS = 10_000;

/**
 * Keys fetched from an issuer's JWKS URL: fetched at start, then every
 * refreshMs in the background, and sooner when a token names a key the set
 * lacks (rate-limited). When fetches fail the last good keys keep verifying
 * for maxStaleMs, then verification fails closed until a fetch succeeds.
 */
export class RemoteKeySet implements KeySet {
  private local: JWTVerifyGetKey | null = null;
  private lastText = '';
  private lastSuccess = 0;
  private lastAttempt = 0;
  private timer: NodeJS.Timeout | null = null;
  private inflight: Promise<void> | null = null;
  private readonly now: () => number;

  constructor(private readonly o: RemoteOptions) {
    this.now = o.now ?? Date.now;
  }

  /** First fetch and the refresh timer; a failed first fetch is logged, and tokens fail until one succeeds. */
  async start(): Promise<void> {
    await this.refresh();
    this.timer = setInterval(() => void this.refresh(), this.o.refreshMs);
    this.timer.unref();
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  readonly getKey: JWTVerifyGetKey = (header, token) => {
    if (this.local === null) throw new AuthzError(REASONS.invalid_token, `no keys from ${this.o.url} yet`);
    const age = this.now() - this.lastSuccess;
    if (age > this.o.refreshMs + this.o.maxStaleMs) {
      throw new AuthzError(REASONS.invalid_token, `keys from ${this.o.url} are ${Math.round(age / 1000)} s old, past their allowed staleness`);
    }
    return this.local(header, token);
  };

  unknownKey(): void {
    if (this.now() - this.lastAttempt >= UNKNOWN_KEY_COOLDOWN_MS) void this.refresh();
  }

  refresh(): Promise<void> {
    this.inflight ??= this.fetchOnce().finally(() => (this.inflight = null));
    return this.inflight;
  }

  private async fetchOnce(): Promise<void> {
    this.lastAttempt = this.now();
    try {
      const res = await (this.o.fetch ?? fetch)(this.o.url, { signal: AbortSignal.timeout(FETCH_TIMEOUT_MS), redirect: 'error' });
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      const text = await res.text();
      const jwks = parseJwks(text, this.o.url);
      const changed = text !== this.lastText;
      this.local = createLocalJWKSet(jwks);
      this.lastText = text;
      this.lastSuccess = this.now();
      if (changed) {
        this.o.log.info({ url: this.o.url, keys: jwks.keys.length }, 'JWKS keys in force');
        this.o.onChange();
      }
    } catch (err) {
      this.o.log.error({ url: this.o.url, error: errorMessage(err), stale_ms: this.lastSuccess === 0 ? null : this.now() - this.lastSuccess }, 'JWKS fetch failed; keeping the last good keys while they may be used');
    }
  }
}
