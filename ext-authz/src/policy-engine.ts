import { loadPolicy, type LoadedPolicy } from '@open-policy-agent/opa-wasm';
import type { PolicyBundle } from './policy-bundle.js';

export const ENTRYPOINT = 'infergate/authz/decision';
/** 64 KiB pages; a policy that needs more than 64 MiB for one decision is broken, not busy. */
const MEMORY = { initial: 5, maximum: 1024 };

/**
 * One compiled policy with its data loaded. Evaluation is synchronous and
 * not re-entrant (one wasm memory), which is also what makes swapping a
 * whole engine on reload atomic for requests in flight.
 */
export class PolicyEngine {
  private readonly encoder = new TextEncoder();

  private constructor(
    private readonly policy: LoadedPolicy,
    private readonly entrypointId: number,
  ) {}

  static async create(bundle: PolicyBundle, data: Record<string, unknown>): Promise<PolicyEngine> {
    const policy = await loadPolicy(bundle.wasm as Parameters<typeof loadPolicy>[0], MEMORY);
    const entrypoints = policy.entrypoints as Record<string, number>;
    const id = entrypoints[ENTRYPOINT];
    if (id === undefined) {
      const found = Object.keys(entrypoints).join(', ') || 'none';
      throw new Error(`policy has no entrypoint ${ENTRYPOINT} (found: ${found}); build with opa build -t wasm -e ${ENTRYPOINT}`);
    }
    policy.setData(data);
    return new PolicyEngine(policy, id);
  }

  /**
   * Evaluates pre-serialised input (the same string that is the cache key)
   * and returns the decision value, or undefined when the policy produced none.
   */
  evaluate(inputJson: string): unknown {
    // An exact ArrayBuffer makes opa-wasm skip its own JSON.stringify.
    const resultSet: unknown = this.policy.evaluate(this.encoder.encode(inputJson).buffer, this.entrypointId);
    if (!Array.isArray(resultSet) || resultSet.length === 0) return undefined;
    if (resultSet.length > 1) throw new Error(`policy returned ${resultSet.length} results, expected one`);
    return (resultSet[0] as { result?: unknown }).result;
  }
}
