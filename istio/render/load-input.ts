import { dirname } from 'node:path';
import { isMap, parseDocument } from 'yaml';
import { ManifestError, readConfigFile } from '../../ext-authz/src/config-error.js';
import { parseManifestText, type PolicyData } from '../../ext-authz/src/manifest.js';
import { parseDeployment, type Deployment } from './deployment-schema.js';
import { parseGlobalQuotas, type GlobalQuotas } from './global-quotas-schema.js';
import { withTierQuotas } from './tier-quotas.js';

export interface RenderInput {
  /** The access manifest as the server will read it: the input text without its deployment and globalQuotas sections. */
  accessManifest: string;
  /** The input's file name, for errors, and the directory it is in: JWKS files are read from there (jwks-files.ts). */
  file: string;
  dir: string;
  policy: PolicyData;
  /** With the tier quotas already in its rate-limit rules (tier-quotas.ts). */
  deployment: Deployment;
  /** The budgets of Envoy's global rate-limit service; null without a globalQuotas section. */
  globalQuotas: GlobalQuotas | null;
}

/**
 * Validates infergate.yaml: the access part exactly as the server would (same
 * code, same messages), then the deployment section, then the tier quotas
 * that join the two, then the global quotas. The ConfigMap gets the access
 * part with the operator's comments kept, and without the deployment and
 * globalQuotas sections (the server uses neither; the budgets go to the
 * rate-limit service's ConfigMap), so changing a replica count or a budget
 * never looks like a policy change. `dir` is the directory the
 * manifest is in; the JWKS files it names are read from there only when the
 * ConfigMap is rendered, so the local stack, which takes just the filters
 * from a manifest whose keys are made at run time, never needs them.
 */
export function parseRenderInput(text: string, file: string, dir: string): RenderInput {
  const policy = parseManifestText(text, file);
  const doc = parseDocument(text, { uniqueKeys: true });
  const value: unknown = doc.get('deployment');
  if (value === undefined) throw new ManifestError(file, 'missing required key "deployment"', 'top level');
  const js = doc.toJS() as { deployment: Record<string, unknown>; globalQuotas?: unknown };
  const deployment = withTierQuotas(parseDeployment(js.deployment, file), policy.tiers, file);
  const globalQuotas = js.globalQuotas === undefined ? null : parseGlobalQuotas(js.globalQuotas, file, policy);
  if (globalQuotas === null) {
    // A service configured for budgets that do not exist would be deployed for nothing.
    for (const key of ['rateLimitService', 'redis'] as const) {
      if (js.deployment[key] !== undefined) throw new ManifestError(file, `${key} has nothing to serve: add a globalQuotas section`, `deployment.${key}`);
    }
  }
  if (!isMap(doc.contents)) throw new ManifestError(file, 'expected a mapping', 'top level');
  doc.delete('deployment');
  doc.delete('globalQuotas');
  return { accessManifest: doc.toString({ lineWidth: 0, flowCollectionPadding: false }), file, dir, policy, deployment, globalQuotas };
}

export function loadRenderInput(path: string): RenderInput {
  const { file, text } = readConfigFile(path);
  return parseRenderInput(text, file, dirname(path));
}
