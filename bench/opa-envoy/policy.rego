# The example access manifest (test/fixtures/manifests/example.yaml) written
# as an OPA-Envoy user would write it: a policy for opa-envoy-plugin's
# envoy_ext_authz_grpc plugin, decision at envoy/authz/allow (see
# config.yaml). bench/authz-bench.ts runs OPA-Envoy with it beside
# infergate; policy_test.rego and test/bench/opa-envoy-policy.test.ts check
# that both make the same decisions on the requests in cases.json.
#
# Same order of judgement as infergate: the caller must be a SPIFFE ID of the
# trust domain, not quarantined, and not refused by the deny rule; then one
# of the allow rules must match. Anything else is denied.
package envoy.authz

import rego.v1

import input.attributes.request.http as http_request

default allow := false

allow if {
	spiffe.trust_domain == "cluster.local"
	not quarantined
	not denied
	allowed
}

# spiffe://<trust domain>/ns/<namespace>/sa/<service account>, from the mTLS
# peer's URI SAN that Envoy sends as source.principal.
spiffe := {"id": id, "trust_domain": td, "namespace": ns, "service_account": sa} if {
	id := input.attributes.source.principal
	[[_, td, ns, sa]] := regex.find_all_string_submatch_n(`^spiffe://([^/]+)/ns/([^/]+)/sa/([^/]+)$`, id, 1)
}

quarantined if spiffe.id in {"spiffe://cluster.local/ns/ml/sa/compromised"}

# Host without its port, lower-cased; the path as OPA-Envoy parsed it
# (percent-decoded, leading slashes and the query removed).
host := lower(split(http_request.host, ":")[0])

path := concat("/", input.parsed_path)

# no-admin: /admin and everything below it, for every caller.
denied if input.parsed_path[0] == "admin"

# gateway-predicts
allowed if {
	spiffe.id == "spiffe://cluster.local/ns/gateway/sa/api-gateway"
	model_host
	http_request.method == "POST"
	some pattern in ["v1/models/*:predict", "v2/models/*/infer"]
	glob.match(pattern, ["/"], path)
}

model_host if host == "model-serving.ml.svc.cluster.local"

model_host if glob.match("**.models.internal", ["."], host)

# batch-reads: any service account in namespace batch, reads only.
allowed if {
	spiffe.namespace == "batch"
	http_request.method == "GET"
}

# mesh-probes: the prober, on any route.
allowed if spiffe.id == "spiffe://cluster.local/ns/monitoring/sa/prober"
