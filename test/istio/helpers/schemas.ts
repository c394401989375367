import type { Model } from '@kubernetes-models/base';
import { WasmPlugin } from '@kubernetes-models/istio/extensions.istio.io/v1alpha1/WasmPlugin';
import { IstioOperator } from '@kubernetes-models/istio/install.istio.io/v1alpha1/IstioOperator';
import { EnvoyFilter } from '@kubernetes-models/istio/networking.istio.io/v1alpha3/EnvoyFilter';
import { AuthorizationPolicy } from '@kubernetes-models/istio/security.istio.io/v1/AuthorizationPolicy';
import { PeerAuthentication } from '@kubernetes-models/istio/security.istio.io/v1/PeerAuthentication';
import { PrometheusRule } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { Namespace } from 'kubernetes-models/v1/Namespace';
import { Service } from 'kubernetes-models/v1/Service';
import { ServiceAccount } from 'kubernetes-models/v1/ServiceAccount';
import { Telemetry } from '@kubernetes-models/istio/telemetry.istio.io/v1/Telemetry';
import { unknownKeys } from './strict-schema.js';

/**
 * Real schemas for every kind render emits: Istio's CRDs (1.29, via
 * @kubernetes-models/istio), Kubernetes' OpenAPI (kubernetes-models) and the
 * Prometheus operator's CRD. A kind without a schema here is an error, so a
 * new renderer cannot slip past validation.
 */

type Ctor = new (data: never) => Model<unknown>;

const MODELS: Record<string, Ctor> = {};
for (const m of [WasmPlugin, IstioOperator, EnvoyFilter, AuthorizationPolicy, PeerAuthentication, PrometheusRule, Deployment, PodDisruptionBudget, ConfigMap, Namespace, Service, ServiceAccount, Telemetry]) {
  const c = m as unknown as Ctor & { apiVersion: string; kind: string };
  MODELS[`${c.apiVersion} ${c.kind}`] = c;
}

export const SCHEMA_KINDS = Object.keys(MODELS);

/**
 * Istio's IstioOperator CRD preserves unknown fields from the root, so its
 * schema says nothing about spec; the meshConfig entry infergate writes is
 * checked field by field by istio/checks/provider-match.ts instead.
 */
const FREE_FORM: Record<string, string[]> = { 'install.istio.io/v1alpha1 IstioOperator': ['/spec'] };

/** Schema errors of one document, including fields the schema does not define; [] when valid. */
export function schemaErrors(doc: unknown): string[] {
  const d = (doc ?? {}) as { apiVersion?: string; kind?: string };
  const Ctor = MODELS[`${d.apiVersion} ${d.kind}`];
  if (!Ctor) return [`no schema for ${d.apiVersion} ${d.kind}`];
  const errors: string[] = [];
  const model = new Ctor(doc as never);
  try {
    model.validate();
  } catch (err) {
    errors.push((err as Error).message);
  }
  const validate = (data: unknown): void => {
    try {
      Ctor.prototype.validate.call(data);
    } catch {
      // Reported above; here only which keys were read matters.
    }
  };
  for (const k of unknownKeys(doc, validate, FREE_FORM[`${d.apiVersion} ${d.kind}`])) errors.push(`unknown field ${k}`);
  return errors;
}
