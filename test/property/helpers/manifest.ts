import type { RefManifest } from './reference.js';

/**
 * The manifest every property runs against. It has what makes judgement
 * order matter: a deny carved out of an allow (weights under GET
 * /v1/models/**), deny rules without a `/**` (so the extra-trailing-slash
 * rule shows), a quarantine entry and a quarantined prefix, a second trust
 * domain, `/*` caller prefixes, `*.` host suffixes, method sets, and a rule
 * with no route at all (so every well-formed route of that caller is
 * allowed, which is what makes "the reference allows => the server allows"
 * a test of path and host acceptance).
 */
export const MANIFEST: RefManifest = {
  trustDomains: ['cluster.local', 'partner.example'],
  quarantine: ['spiffe://cluster.local/ns/ml/sa/compromised', 'spiffe://partner.example/ns/untrusted/*'],
  rules: [
    {
      name: 'no-weights',
      action: 'deny',
      callers: ['spiffe://cluster.local/*', 'spiffe://partner.example/*'],
      paths: ['/v1/models/*/weights/**', '/v1/models/*/export'],
    },
    { name: 'no-admin', action: 'deny', callers: ['spiffe://cluster.local/*'], paths: ['/admin/**', '/v1/models/*:delete'] },
    { name: 'batch-no-deletes', action: 'deny', callers: ['spiffe://cluster.local/ns/batch/*'], methods: ['DELETE'] },
    {
      name: 'gateway-predicts',
      callers: ['spiffe://cluster.local/ns/gateway/sa/api-gateway'],
      hosts: ['model-serving.ml.svc.cluster.local', '*.models.internal'],
      methods: ['POST'],
      paths: ['/v1/models/*:predict', '/v2/models/*/infer'],
    },
    {
      name: 'readers',
      callers: ['spiffe://cluster.local/ns/batch/*', 'spiffe://partner.example/ns/partner/sa/reader'],
      methods: ['GET', 'HEAD'],
      paths: ['/v1/models/**'],
    },
    { name: 'probes', callers: ['spiffe://cluster.local/ns/monitoring/sa/prober'], paths: ['/healthz', '/.well-known/**', '/v1/models/'] },
    {
      name: 'partner-infer',
      callers: ['spiffe://partner.example/*'],
      hosts: ['*.models.internal'],
      methods: ['POST'],
      paths: ['/v2/models/*/infer', '/v1/models/llama/**'],
    },
    { name: 'operators', callers: ['spiffe://cluster.local/ns/ops/sa/admin'] },
  ],
};

/** The same manifest for model servers that give `;` no special meaning. */
export const SEMICOLON_MANIFEST: RefManifest = { ...MANIFEST, requestPaths: { allowSemicolons: true } };

export const GATEWAY = 'spiffe://cluster.local/ns/gateway/sa/api-gateway';
export const OPERATOR = 'spiffe://cluster.local/ns/ops/sa/admin';
