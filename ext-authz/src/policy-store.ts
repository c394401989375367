import { createHash } from 'node:crypto';
import { type FSWatcher, watch } from 'node:fs';
import { stat } from 'node:fs/promises';
import { dirname, basename } from 'node:path';
import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import type { ActivePolicy } from './authorizer.js';
import { errorMessage } from './errors.js';
import { readConfigFile } from './config-error.js';
import { buildEndUsers, jwksFiles, RemoteKeySets, type EndUsers } from './end-users/end-users.js';
import { parseManifestText, type PolicyData } from './manifest.js';
import { STRICT_PATHS, type PathOptions } from './path.js';
import type { Metrics } from './metrics.js';
import { parseBundle, readBundleBytes } from './policy-bundle.js';
import { PolicyEngine } from './policy-engine.js';

export interface PolicyStoreOptions {
  readonly bundlePath: string;
  readonly manifestPath: string | null;
  readonly log: Logger;
  readonly metrics: Metrics;
  /** Called after every swap, e.g. to clear the decision cache. */
  readonly onSwap: (policy: ActivePolicy) => void;
  /** Fallback poll for file systems where fs.watch misses changes (some volume mounts). */
  readonly pollMs?: number;
  /**
   * Where remote JWKS keys come from (default: fetched here). A store that
   * only validates (the primary of --workers) passes one that never fetches.
   */
  readonly remoteKeys?: RemoteKeySets;
  /**
   * Puts a validated change in force elsewhere before it is in force here
   * (the primary of --workers: every worker loads it, then all swap). A
   * throw rejects the change like a bad file; the returned fields go into
   * the "policy in force" log line.
   */
  readonly distribute?: (content: PolicyContent) => Promise<Record<string, unknown>>;
}

/**
 * Everything a policy revision is built from, as read: enough for another
 * process to build the very same policy without reading the files again.
 */
export interface PolicyContent {
  readonly bundlePath: string;
  readonly bundle: Uint8Array;
  readonly manifestPath: string | null;
  readonly manifest: { readonly file: string; readonly text: string } | null;
  /** JWKS files the manifest names: absolute path → text. */
  readonly jwks: ReadonlyArray<readonly [string, string]>;
  /** sha256 over all of it; the revision is its first 12 hex digits. */
  readonly hash: string;
}

/** A JWKS file the manifest names; a read failure says which manifest named it. */
function readJwksFile(manifestFile: string, path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new Error(`${manifestFile}: cannot read JWKS file: ${(err as NodeJS.ErrnoException).code ?? errorMessage(err)} (${path})`);
  }
}

/** A change that cannot be put in force, and which of the two inputs is to blame. */
export class LoadError extends Error {
  constructor(readonly source: 'manifest' | 'bundle', message: string) {
    super(message);
  }
}

/**
 * Holds the policy in force and replaces it when the bundle or manifest
 * changes. A new policy is built completely (read, validated, compiled,
 * data loaded) before one reference swap puts it in force, so a request
 * never sees half of a reload; a bad change is logged and counted and the
 * last good policy stays.
 */
export class PolicyStore {
  private active: ActivePolicy | null = null;
  private activeContent: PolicyContent | null = null;
  private contentHash: string | null = null;
  /** The content of the last change that was rejected, so it is not judged again. */
  private rejectedHash: string | null = null;
  private watchers: FSWatcher[] = [];
  private poll: NodeJS.Timeout | null = null;
  private debounce: NodeJS.Timeout | null = null;
  private reloading: Promise<boolean> | null = null;
  private again = false;
  private lastStat = '';
  /** Files besides bundle and manifest that the policy in force was read from (JWKS files). */
  private extraFiles: string[] = [];
  private readonly remoteKeys: RemoteKeySets;

  constructor(private readonly opts: PolicyStoreOptions) {
    // A remote JWKS that changed invalidates every token verified with the old keys.
    this.remoteKeys = opts.remoteKeys ?? new RemoteKeySets(opts.log, () => this.active?.endUsers?.verifier.clear());
  }

  readonly current = (): ActivePolicy | null => this.active;

  /** What the policy in force was built from. */
  get content(): PolicyContent | null {
    return this.activeContent;
  }

  private async build(): Promise<{ policy: ActivePolicy; content: PolicyContent } | null> {
    const { bundlePath, manifestPath } = this.opts;
    let bytes: Buffer;
    let manifest: { file: string; text: string } | null = null;
    try {
      bytes = await readBundleBytes(bundlePath);
    } catch (err) {
      throw new LoadError('bundle', errorMessage(err));
    }
    if (manifestPath !== null) {
      try {
        manifest = readConfigFile(manifestPath);
      } catch (err) {
        throw new LoadError('manifest', errorMessage(err));
      }
    }
    // Parsed before the comparison below, because the manifest names the JWKS
    // files whose contents are part of the revision too.
    let data: PolicyData | null = null;
    let problem: unknown = null;
    const jwks = new Map<string, string>();
    if (manifest !== null) {
      try {
        data = parseManifestText(manifest.text, manifest.file);
        if (data.end_users !== null) {
          for (const path of jwksFiles(data.end_users, dirname(manifestPath!))) jwks.set(path, readJwksFile(manifest.file, path));
        }
      } catch (err) {
        problem = err;
      }
    }
    const h = createHash('sha256').update(bytes).update('\0').update(manifest?.text ?? '');
    for (const [path, text] of jwks) h.update('\0').update(path).update('\0').update(text);
    const hash = h.digest('hex');
    // Unchanged, or the very content already rejected: the directory watch and
    // the poll both see one edit, and it must be judged (and counted) once.
    if (hash === this.contentHash) {
      // Back to what is in force (a bad edit reverted): nothing to load, and nothing failing.
      this.opts.metrics.lastReloadOk.set(1);
      return null;
    }
    if (hash === this.rejectedHash) return null;
    const content: PolicyContent = { bundlePath, bundle: bytes, manifestPath, manifest, jwks: [...jwks], hash };
    try {
      if (problem !== null) throw new LoadError('manifest', errorMessage(problem));
      const policy = await compilePolicy(content, data, this.remoteKeys);
      this.extraFiles = [...jwks.keys()];
      return { policy, content };
    } catch (err) {
      this.rejectedHash = hash;
      throw err;
    }
  }

  /** Initial load: throws if the policy cannot be loaded, so the server never starts without one. */
  async load(): Promise<ActivePolicy> {
    const built = await this.build();
    if (built === null) return this.active!;
    this.swap(built.policy, built.content, {});
    return built.policy;
  }

  private swap(policy: ActivePolicy, content: PolicyContent, extra: Record<string, unknown>): void {
    const previous = this.active?.revision ?? null;
    this.active = policy;
    this.activeContent = content;
    this.contentHash = content.hash;
    const m = this.opts.metrics;
    m.reloads.inc({ result: 'success' });
    m.lastReloadOk.set(1);
    m.setRevision(policy.revision);
    this.opts.onSwap(policy);
    this.remoteKeys.retain(policy.endUsers?.config ?? null);
    this.opts.log.info({ revision: policy.revision, previous, ...extra }, 'policy in force');
  }

  /** Re-reads both files; returns whether a new policy is in force. Never throws. */
  reload(): Promise<boolean> {
    if (this.reloading) {
      this.again = true;
      return this.reloading;
    }
    this.reloading = (async () => {
      let swapped = false;
      do {
        this.again = false;
        try {
          const built = await this.build();
          if (built !== null) {
            let extra: Record<string, unknown> = {};
            if (this.opts.distribute) {
              try {
                extra = await this.opts.distribute(built.content);
              } catch (err) {
                // Judged once, like a bad file: the watch and the poll both see the change.
                this.rejectedHash = built.content.hash;
                throw err;
              }
            }
            this.swap(built.policy, built.content, extra);
            swapped = true;
          }
        } catch (err) {
          const source = err instanceof LoadError ? err.source : 'bundle';
          this.opts.metrics.reloads.inc({ result: 'error' });
          this.opts.metrics.reloadErrors.inc({ source });
          this.opts.metrics.lastReloadOk.set(0);
          this.opts.log.error(
            { source, error: errorMessage(err), revision: this.active?.revision ?? null },
            'policy reload rejected; keeping the last good policy',
          );
        }
      } while (this.again);
      this.reloading = null;
      return swapped;
    })();
    return this.reloading;
  }

  private schedule(): void {
    // Editors and ConfigMap updates write in several steps; wait briefly for them to settle.
    // The timer is not pushed back by later events, so a busy directory cannot starve a reload.
    if (this.debounce) return;
    this.debounce = setTimeout(() => {
      this.debounce = null;
      void this.reload();
    }, 50);
  }

  private async statSignature(): Promise<string> {
    const paths = [this.opts.bundlePath, this.opts.manifestPath, ...this.extraFiles].filter((p): p is string => p !== null);
    const parts = await Promise.all(
      paths.map(async (p) => {
        try {
          const s = await stat(p);
          return `${s.ino}:${s.size}:${s.mtimeMs}`;
        } catch {
          return 'missing';
        }
      }),
    );
    return parts.join('|');
  }

  /**
   * Watches the directories (not the files: an atomic rename or a Kubernetes
   * ConfigMap symlink swap replaces the file a file watch is attached to) and
   * also polls, since some volume types deliver no inotify events.
   */
  async watch(): Promise<void> {
    const dirs = new Set([dirname(this.opts.bundlePath)]);
    if (this.opts.manifestPath !== null) dirs.add(dirname(this.opts.manifestPath));
    // Kubernetes swaps a ConfigMap volume by re-pointing its ..data symlink. JWKS
    // files (named by the manifest, so known only once it is read) count too.
    const isWatched = (name: string): boolean =>
      name === '..data' || name === basename(this.opts.bundlePath) ||
      (this.opts.manifestPath !== null && name === basename(this.opts.manifestPath)) ||
      this.extraFiles.some((f) => basename(f) === name);
    for (const dir of dirs) {
      try {
        const w = watch(dir, { persistent: false }, (_event, name) => {
          if (name === null || isWatched(name.toString())) this.schedule();
        });
        w.on('error', (err) => this.opts.log.warn({ dir, error: errorMessage(err) }, 'directory watch failed; relying on polling'));
        this.watchers.push(w);
      } catch (err) {
        this.opts.log.warn({ dir, error: errorMessage(err) }, 'cannot watch directory; relying on polling');
      }
    }
    this.lastStat = await this.statSignature();
    const pollMs = this.opts.pollMs ?? 1000;
    this.poll = setInterval(() => {
      void this.statSignature().then((sig) => {
        if (sig !== this.lastStat) {
          this.lastStat = sig;
          this.schedule();
        }
      });
    }, pollMs);
    this.poll.unref();
  }

  close(): void {
    for (const w of this.watchers) w.close();
    this.watchers = [];
    if (this.poll) clearInterval(this.poll);
    if (this.debounce) clearTimeout(this.debounce);
    this.poll = null;
    this.debounce = null;
    this.remoteKeys.close();
  }
}

/**
 * Builds the policy `content` describes. `manifest` is its manifest already
 * parsed (the store parsed it to find the JWKS files), or undefined to parse
 * it here (a worker building what the primary validated).
 */
export async function compilePolicy(content: PolicyContent, manifest: PolicyData | null | undefined, remoteKeys: RemoteKeySets): Promise<ActivePolicy> {
  const file = basename(content.bundlePath);
  if (manifest === undefined) {
    try {
      manifest = content.manifest !== null ? parseManifestText(content.manifest.text, content.manifest.file) : null;
    } catch (err) {
      throw new LoadError('manifest', errorMessage(err));
    }
  }
  let bundle;
  try {
    bundle = await parseBundle(Buffer.from(content.bundle.buffer, content.bundle.byteOffset, content.bundle.byteLength), file);
  } catch (err) {
    throw new LoadError('bundle', errorMessage(err));
  }
  let data: Record<string, unknown> = bundle.data;
  let paths: PathOptions = STRICT_PATHS;
  let endUsers: EndUsers | null = null;
  if (manifest !== null) {
    data = { ...bundle.data, access_manifest: manifest };
    paths = Object.freeze({ allowSemicolons: manifest.request_paths.allow_semicolons });
    if (manifest.end_users !== null) {
      try {
        endUsers = await buildEndUsers(manifest.end_users, dirname(content.manifestPath!), new Map(content.jwks), remoteKeys);
      } catch (err) {
        throw new LoadError('manifest', `${basename(content.manifestPath!)}: ${errorMessage(err)}`);
      }
    }
  }
  let engine: PolicyEngine;
  try {
    engine = await PolicyEngine.create(bundle, data);
  } catch (err) {
    throw new LoadError('bundle', `${file}: ${errorMessage(err)}`);
  }
  return { engine, revision: content.hash.slice(0, 12), paths, endUsers };
}
