import type { ActivePolicy } from '../authorizer.js';
import { RemoteKeySets } from '../end-users/end-users.js';
import type { Logger } from 'pino';
import { compilePolicy, type PolicyContent } from '../policy-store.js';

/**
 * A worker's policy in force, and the ones the primary has asked it to
 * prepare. The worker never reads the policy files: it builds what the
 * primary validated, and switches when told, at the instant it is told.
 */
export class WorkerPolicy {
  private active: ActivePolicy | null = null;
  private readonly prepared = new Map<number, ActivePolicy>();
  /** A committed policy waiting for its switch-over time. */
  private due: { readonly seq: number; readonly policy: ActivePolicy; readonly at: bigint; readonly timer: NodeJS.Timeout } | null = null;
  readonly remoteKeys: RemoteKeySets;

  constructor(
    log: Logger,
    /** Called once a committed policy is in force: how late this worker switched (0 when on time). */
    private readonly onSwitch: (seq: number, policy: ActivePolicy, lateNs: number) => void,
  ) {
    // A remote JWKS that changed invalidates every token verified with the old keys.
    this.remoteKeys = new RemoteKeySets(log, () => this.active?.endUsers?.verifier.clear());
  }

  /**
   * The policy a check starting now is decided by. Read once per check, so
   * a check is decided wholly by one revision; a committed policy is in
   * force for every check that starts at or after its switch-over time.
   */
  readonly current = (): ActivePolicy | null => {
    if (this.due !== null && process.hrtime.bigint() >= this.due.at) this.switchDue();
    return this.active;
  };

  /** The first policy, built before the worker serves. */
  async load(content: PolicyContent): Promise<ActivePolicy> {
    this.active = await compilePolicy(content, undefined, this.remoteKeys);
    this.remoteKeys.retain(this.active.endUsers?.config ?? null);
    return this.active;
  }

  /** Builds `content` beside the policy in force; throws a LoadError if it cannot be built. */
  async prepare(seq: number, content: PolicyContent): Promise<void> {
    this.prepared.set(seq, await compilePolicy(content, undefined, this.remoteKeys));
  }

  abort(seq: number): void {
    this.prepared.delete(seq);
    this.retainKeys();
  }

  /** Puts prepared policy `seq` in force at `at` (process.hrtime.bigint() time), or now if that has passed. */
  commit(seq: number, at: bigint): void {
    const policy = this.prepared.get(seq);
    if (policy === undefined) throw new Error(`no prepared policy ${seq}`);
    this.prepared.delete(seq);
    const now = process.hrtime.bigint();
    // Read late: checks since `at` were decided by the old revision, and that is the window.
    if (now >= at) this.install(seq, policy, Number(now - at));
    else this.due = { seq, policy, at, timer: this.armTimer(at - now) };
  }

  /** So the switch also happens on an idle worker. Timers run on a millisecond clock, so it may fire a little early: then again. */
  private armTimer(inNs: bigint): NodeJS.Timeout {
    return setTimeout(() => {
      const due = this.due;
      if (due === null) return;
      const now = process.hrtime.bigint();
      if (now >= due.at) this.switchDue();
      else this.due = { ...due, timer: this.armTimer(due.at - now) };
    }, Math.max(1, Math.ceil(Number(inNs) / 1e6)));
  }

  private switchDue(): void {
    const { seq, policy, timer } = this.due!;
    clearTimeout(timer);
    this.due = null;
    this.install(seq, policy, 0);
  }

  private install(seq: number, policy: ActivePolicy, lateNs: number): void {
    this.active = policy;
    this.retainKeys();
    this.onSwitch(seq, policy, lateNs);
  }

  /** Remote key sets that neither the policy in force nor a prepared one uses are closed. */
  private retainKeys(): void {
    // retain() takes one config; a prepared policy only exists between prepare and commit, when nothing else retains.
    if (this.prepared.size === 0) this.remoteKeys.retain(this.active?.endUsers?.config ?? null);
  }

  close(): void {
    if (this.due !== null) clearTimeout(this.due.timer);
    this.remoteKeys.close();
  }
}
