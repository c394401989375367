import type { PolicyInput } from './policy-input.js';

/**
 * The decision cache key is exactly the serialised policy input plus the
 * policy revision. PolicyInput objects are always built with the same key
 * order (see toPolicyInput), so JSON.stringify is canonical, and the same
 * string is handed to the policy, so the cache can never answer from data the
 * policy did not see.
 */
export function serialiseInput(input: PolicyInput): string {
  return JSON.stringify(input);
}

export function cacheKey(inputJson: string, revision: string): string {
  // The revision is hex, so a separator that cannot occur in it keeps keys unambiguous.
  return `${revision}|${inputJson}`;
}
