import { isMap, parseDocument } from 'yaml';
import { ManifestError, readConfigFile } from '../../ext-authz/src/config-error.js';
import { parseManifestText, type PolicyData } from '../../ext-authz/src/manifest.js';
import { parseDeployment, type Deployment } from './deployment-schema.js';

export interface RenderInput {
  /** The access manifest as the server will read it: the input text without its deployment section. */
  accessManifest: string;
  policy: PolicyData;
  deployment: Deployment;
}

/**
 * Validates infergate.yaml: the access part exactly as the server would (same
 * code, same messages), then the deployment section. The ConfigMap gets the
 * access part with the operator's comments kept, and without the deployment
 * section, so changing a replica count never looks like a policy change.
 */
export function parseRenderInput(text: string, file: string): RenderInput {
  const policy = parseManifestText(text, file);
  const doc = parseDocument(text, { uniqueKeys: true });
  const value: unknown = doc.get('deployment');
  if (value === undefined) throw new ManifestError(file, 'missing required key "deployment"', 'top level');
  const deployment = parseDeployment(doc.toJS().deployment, file);
  if (!isMap(doc.contents)) throw new ManifestError(file, 'expected a mapping', 'top level');
  doc.delete('deployment');
  return { accessManifest: doc.toString({ lineWidth: 0, flowCollectionPadding: false }), policy, deployment };
}

export function loadRenderInput(path: string): RenderInput {
  const { file, text } = readConfigFile(path);
  return parseRenderInput(text, file);
}
