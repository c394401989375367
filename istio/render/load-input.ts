import { dirname } from 'node:path';
import { isMap, parseDocument } from 'yaml';
import { ManifestError, readConfigFile } from '../../ext-authz/src/config-error.js';
import { parseManifestText, type PolicyData } from '../../ext-authz/src/manifest.js';
import { parseDeployment, type Deployment } from './deployment-schema.js';
import { withTierQuotas } from './tier-quotas.js';

export interface RenderInput {
  /** The access manifest as the server will read it: the input text without its deployment section. */
  accessManifest: string;
  /** The input's file name, for errors, and the directory it is in: JWKS files are read from there (jwks-files.ts). */
  file: string;
  dir: string;
  policy: PolicyData;
  /** With the tier quotas already in its rate-limit rules (tier-quotas.ts). */
  deployment: Deployment;
}

/**
 * Validates infergate.yaml: the access part exactly as the server would (same
 * code, same messages), then the deployment section, then the tier quotas
 * that join the two. The ConfigMap gets the access part with the operator's
 * comments kept, and without the deployment section, so changing a replica
 * count never looks like a policy change. `dir` is the directory the
 * manifest is in; the JWKS files it names are read from there only when the
 * ConfigMap is rendered, so the local stack, which takes just the filters
 * from a manifest whose keys are made at run time, never needs them.
 */
export function parseRenderInput(text: string, file: string, dir: string): RenderInput {
  const policy = parseManifestText(text, file);
  const doc = parseDocument(text, { uniqueKeys: true });
  const value: unknown = doc.get('deployment');
  if (value === undefined) throw new ManifestError(file, 'missing required key "deployment"', 'top level');
  const deployment = withTierQuotas(parseDeployment(doc.toJS().deployment, file), policy.tiers, file);
  if (!isMap(doc.contents)) throw new ManifestError(file, 'expected a mapping', 'top level');
  doc.delete('deployment');
  return { accessManifest: doc.toString({ lineWidth: 0, flowCollectionPadding: false }), file, dir, policy, deployment };
}

export function loadRenderInput(path: string): RenderInput {
  const { file, text } = readConfigFile(path);
  return parseRenderInput(text, file, dirname(path));
}
