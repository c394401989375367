import type { PayloadLimit, RateLimit } from './deployment-schema.js';

/**
 * The guard module is built several times (filters/guard/index*.ts), each
 * build exporting only the callbacks a family of configurations uses: Envoy
 * calls every callback a module exports, and each call is a host→VM crossing
 * (docs/filters.md § Guard builds). Smallest first; the full build runs any
 * configuration. filters/guard/callbacks.ts states the same table inside the
 * modules, and test/filters/imports.test.ts pins each built module's exports
 * to this one.
 */
export const GUARD_MODULES = ['guard-request-only', 'guard-no-response-body', 'guard'] as const;
export type GuardModule = (typeof GUARD_MODULES)[number];

/** The callbacks beyond request headers and body, which every build has. */
export interface ResponseCallbacks {
  responseHeaders: boolean;
  responseBody: boolean;
}

export const GUARD_CALLBACKS: Record<GuardModule, ResponseCallbacks> = {
  'guard-request-only': { responseHeaders: false, responseBody: false },
  'guard-no-response-body': { responseHeaders: true, responseBody: false },
  guard: { responseHeaders: true, responseBody: true },
};

/** What a guard configuration makes Envoy call back on the response. */
export function guardNeeds(rateLimit: RateLimit | null, payloadLimit: PayloadLimit | null): ResponseCallbacks {
  // The response cap reads the response content-length, then counts the body.
  const cap = (payloadLimit?.maxResponseBytes ?? 0) > 0;
  // Allowed responses carry x-ratelimit-* unless budgetHeaders is false.
  const budget = rateLimit !== null && (rateLimit.budgetHeaders ?? true);
  return { responseHeaders: cap || budget, responseBody: cap };
}

/** Whether `module` exports every callback `needs` names. */
export function guardCovers(module: GuardModule, needs: ResponseCallbacks): boolean {
  const has = GUARD_CALLBACKS[module];
  return (has.responseHeaders || !needs.responseHeaders) && (has.responseBody || !needs.responseBody);
}

/** The smallest build that runs this configuration. */
export function guardModuleFor(rateLimit: RateLimit | null, payloadLimit: PayloadLimit | null): GuardModule {
  const needs = guardNeeds(rateLimit, payloadLimit);
  return GUARD_MODULES.find((m) => guardCovers(m, needs))!;
}

/** The placeholder a guard url template names the build with. */
export const MODULE_PLACEHOLDER = '{module}';
