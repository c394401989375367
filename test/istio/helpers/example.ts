import { readFileSync } from 'node:fs';
import { parseDocument } from 'yaml';
import { parseRenderInput, type RenderInput } from '../../../istio/render/load-input.js';
import { ROOT } from '../../helpers/paths.js';

export const EXAMPLE_DIR = `${ROOT}istio/example`;
export const EXAMPLE_INPUT = `${EXAMPLE_DIR}/infergate.yaml`;
export const RENDERED_DIR = `${ROOT}istio/rendered`;

export function exampleText(): string {
  return readFileSync(EXAMPLE_INPUT, 'utf8');
}

export function exampleInput(): RenderInput {
  return parseRenderInput(exampleText(), 'infergate.yaml', EXAMPLE_DIR);
}

/**
 * The example with one edit to its deployment section (`edit` gets the parsed deployment value to change),
 * and optionally one to its access part (`access` gets the whole parsed document; top-level keys it changes are written back).
 */
export function variantText(edit: (deployment: Record<string, any>) => void, access: (manifest: Record<string, any>) => void = () => {}): string {
  const doc = parseDocument(exampleText());
  const js = doc.toJS() as Record<string, any>;
  edit(js.deployment);
  doc.set('deployment', js.deployment);
  const before = doc.toJS() as Record<string, any>;
  access(js);
  for (const k of Object.keys(before)) if (!(k in js)) doc.delete(k);
  for (const [k, v] of Object.entries(js)) if (JSON.stringify(v) !== JSON.stringify(before[k])) doc.set(k, v);
  return doc.toString();
}

export function variantInput(edit: (deployment: Record<string, any>) => void, access?: (manifest: Record<string, any>) => void): RenderInput {
  return parseRenderInput(variantText(edit, access), 'infergate.yaml', EXAMPLE_DIR);
}

/** Drops the example's tier quotas (for variants without a rate limit, which tier quotas need). */
export function withoutTierQuotas(manifest: Record<string, any>): void {
  for (const tier of Object.values(manifest.tiers as Record<string, any>)) delete tier.rateLimit;
}

/** Turns the example (form guard, the default) into the separate form: one module and filter per check, each with its own url. */
export function toSeparateForm(deployment: Record<string, any>): void {
  deployment.filters.form = 'separate';
  delete deployment.filters.guard;
  deployment.filters.rateLimit.url = 'oci://ghcr.io/infergate/rate-limit:0.1.0';
  deployment.filters.payloadLimit.url = 'oci://ghcr.io/infergate/payload-limit:0.1.0';
}

/** The example in the separate form, with an optional further edit. */
export function separateInput(edit: (deployment: Record<string, any>) => void = () => {}): RenderInput {
  return variantInput((d) => {
    toSeparateForm(d);
    edit(d);
  });
}
