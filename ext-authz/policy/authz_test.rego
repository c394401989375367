package infergate.authz_test

import rego.v1

import data.infergate.authz

# A manifest as the server compiles it (see ext-authz/src/manifest.ts).
manifest := {
	"trust_domains": {"cluster.local": true},
	"quarantine": {"exact": {"spiffe://cluster.local/ns/ml/sa/compromised": true}, "prefixes": ["spiffe://cluster.local/ns/sandbox/"]},
	"rules": [
		{
			"name": "gateway-predicts", "action": "allow",
			"callers": {"exact": {"spiffe://cluster.local/ns/gateway/sa/api-gateway": true}, "prefixes": []},
			"hosts": {"exact": {"model-serving.ml.svc.cluster.local": true}, "suffixes": [".models.internal"]},
			"methods": {"POST": true},
			"paths": ["^/v1/models/[^/]*:predict$"],
		},
		{
			"name": "no-admin", "action": "deny",
			"callers": {"exact": {}, "prefixes": ["spiffe://cluster.local/"]},
			"hosts": null, "methods": null, "paths": ["^/admin(?:/.*)?$"],
		},
		{
			"name": "batch-anything", "action": "allow",
			"callers": {"exact": {}, "prefixes": ["spiffe://cluster.local/ns/batch/"]},
			"hosts": null, "methods": null, "paths": null,
		},
	],
}

caller(id, td) := {"id": id, "trust_domain": td, "path": "", "namespace": null, "service_account": null}

gateway := caller("spiffe://cluster.local/ns/gateway/sa/api-gateway", "cluster.local")

http(c, host, method, path) := {"caller": c, "kind": "http", "host": host, "method": method, "path": path, "headers": null}

test_allows_the_gateway_to_predict if {
	d := authz.decision with data.access_manifest as manifest
		with input as http(gateway, "model-serving.ml.svc.cluster.local", "POST", "/v1/models/bert:predict")
	d == {"allowed": true, "code": "allowed", "rule": "gateway-predicts"}
}

test_host_suffix_matches_subdomains_only if {
	d1 := authz.decision with data.access_manifest as manifest
		with input as http(gateway, "a.models.internal", "POST", "/v1/models/x:predict")
	d1.allowed
	d2 := authz.decision with data.access_manifest as manifest
		with input as http(gateway, "models.internal", "POST", "/v1/models/x:predict")
	d2 == {"allowed": false, "code": "no_matching_rule", "rule": null}
}

test_star_does_not_cross_a_slash if {
	d := authz.decision with data.access_manifest as manifest
		with input as http(gateway, "model-serving.ml.svc.cluster.local", "POST", "/v1/models/a/b:predict")
	d.code == "no_matching_rule"
}

test_wrong_method_is_not_matched if {
	d := authz.decision with data.access_manifest as manifest
		with input as http(gateway, "model-serving.ml.svc.cluster.local", "GET", "/v1/models/bert:predict")
	d.code == "no_matching_rule"
}

test_denies_a_caller_from_another_trust_domain if {
	d := authz.decision with data.access_manifest as manifest
		with input as http(caller("spiffe://evil.example/ns/gateway/sa/api-gateway", "evil.example"), "model-serving.ml.svc.cluster.local", "POST", "/v1/models/bert:predict")
	d == {"allowed": false, "code": "foreign_trust_domain", "rule": null}
}

test_quarantine_wins_over_allow_rules if {
	d := authz.decision with data.access_manifest as manifest
		with input as http(caller("spiffe://cluster.local/ns/sandbox/sa/x", "cluster.local"), "h", "GET", "/")
	d.code == "quarantined"
	d2 := authz.decision with data.access_manifest as manifest
		with input as http(caller("spiffe://cluster.local/ns/ml/sa/compromised", "cluster.local"), "h", "GET", "/")
	d2.code == "quarantined"
}

test_deny_rules_win_over_allow_rules if {
	d := authz.decision with data.access_manifest as manifest
		with input as http(caller("spiffe://cluster.local/ns/batch/sa/job", "cluster.local"), "h", "GET", "/admin/users")
	d == {"allowed": false, "code": "denied_by_rule", "rule": "no-admin"}
	d2 := authz.decision with data.access_manifest as manifest
		with input as http(caller("spiffe://cluster.local/ns/batch/sa/job", "cluster.local"), "h", "GET", "/administrator")
	d2.rule == "batch-anything"
}

test_tcp_checks_match_only_rules_without_route_conditions if {
	tcp := {"caller": gateway, "kind": "tcp", "host": null, "method": null, "path": null, "headers": null}
	d := authz.decision with data.access_manifest as manifest with input as tcp
	d.code == "no_matching_rule"
	batch := object.union(tcp, {"caller": caller("spiffe://cluster.local/ns/batch/sa/job", "cluster.local")})
	d2 := authz.decision with data.access_manifest as manifest with input as batch
	d2.rule == "batch-anything"
}

test_fails_closed_without_a_manifest if {
	d := authz.decision with input as http(gateway, "h", "GET", "/")
	d == {"allowed": false, "code": "policy_error", "rule": null}
}
