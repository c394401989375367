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
			"paths": [{"segments": ["", "v1", "models", {"prefix": "", "suffix": ":predict"}], "below": false, "trailing_slash": false, "regex": null}],
		},
		{
			"name": "no-admin", "action": "deny",
			"callers": {"exact": {}, "prefixes": ["spiffe://cluster.local/"]},
			"hosts": null, "methods": null, "paths": [{"segments": ["", "admin"], "below": true, "trailing_slash": true, "regex": null}],
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

# End users: claims verified by the server arrive as input.end_user.
tenant_manifest := {
	"trust_domains": {"cluster.local": true},
	"quarantine": {"exact": {}, "prefixes": []},
	"tiers": {
		"free": {"paths": [{"segments": ["", "v1", "models", "text-small:predict"], "below": false, "trailing_slash": false, "regex": null}], "rate_limit": null},
		"premium": {"paths": [{"segments": ["", "v1", "models", {"prefix": "", "suffix": ":predict"}], "below": false, "trailing_slash": false, "regex": null}, {"segments": ["", "v2", "models", {"prefix": "", "suffix": ""}, "infer"], "below": false, "trailing_slash": false, "regex": null}], "rate_limit": null},
	},
	"rules": [
		{
			"name": "tenants-predict", "action": "allow",
			"callers": {"exact": {"spiffe://cluster.local/ns/gateway/sa/api-gateway": true}, "prefixes": []},
			"hosts": null, "methods": {"POST": true}, "paths": null,
			"tenants": {"acme": true, "globex": true}, "tiers": null, "scopes": ["predict"],
		},
		{
			"name": "no-banned-tenant", "action": "deny",
			"callers": {"exact": {}, "prefixes": ["spiffe://cluster.local/"]},
			"hosts": null, "methods": null, "paths": null,
			"tenants": {"banned": true}, "tiers": null, "scopes": null,
		},
		{
			"name": "batch-anything", "action": "allow",
			"callers": {"exact": {}, "prefixes": ["spiffe://cluster.local/ns/batch/"]},
			"hosts": null, "methods": null, "paths": null, "tenants": null, "tiers": null, "scopes": null,
		},
	],
}

user(tenant, tier, scopes) := {"issuer": "https://auth.example", "tenant": tenant, "tier": tier, "scopes": scopes}

as_user(path, eu) := object.union(http(gateway, "h", "POST", path), {"end_user": eu})

test_a_premium_tenant_with_the_scope_may_call_any_model if {
	d := authz.decision with data.access_manifest as tenant_manifest
		with input as as_user("/v2/models/image/infer", user("acme", "premium", ["predict", "read"]))
	d == {"allowed": true, "code": "allowed", "rule": "tenants-predict"}
}

test_a_free_tenant_is_held_to_its_tier_routes if {
	d1 := authz.decision with data.access_manifest as tenant_manifest
		with input as as_user("/v1/models/text-small:predict", user("acme", "free", ["predict"]))
	d1.allowed
	d2 := authz.decision with data.access_manifest as tenant_manifest
		with input as as_user("/v2/models/image/infer", user("acme", "free", ["predict"]))
	d2 == {"allowed": false, "code": "tier_forbids", "rule": "tenants-predict"}
}

test_an_unlisted_or_missing_tier_is_forbidden if {
	d1 := authz.decision with data.access_manifest as tenant_manifest
		with input as as_user("/v1/models/x:predict", user("acme", "gold", ["predict"]))
	d1.code == "tier_forbids"
	d2 := authz.decision with data.access_manifest as tenant_manifest
		with input as as_user("/v1/models/x:predict", user("acme", null, ["predict"]))
	d2.code == "tier_forbids"
}

test_a_rule_needs_its_tenant_and_every_scope if {
	d1 := authz.decision with data.access_manifest as tenant_manifest
		with input as as_user("/v1/models/x:predict", user("initech", "premium", ["predict"]))
	d1.code == "no_matching_rule"
	d2 := authz.decision with data.access_manifest as tenant_manifest
		with input as as_user("/v1/models/x:predict", user("acme", "premium", ["read"]))
	d2.code == "no_matching_rule"
}

test_no_token_where_a_rule_wants_an_end_user if {
	d := authz.decision with data.access_manifest as tenant_manifest
		with input as object.union(http(gateway, "h", "POST", "/v1/models/x:predict"), {"end_user": null})
	d == {"allowed": false, "code": "no_token", "rule": null}
}

test_deny_rules_can_name_tenants if {
	d := authz.decision with data.access_manifest as tenant_manifest
		with input as as_user("/v1/models/x:predict", user("banned", "premium", ["predict"]))
	d == {"allowed": false, "code": "denied_by_rule", "rule": "no-banned-tenant"}
}

test_workload_traffic_is_not_tiered if {
	batch := caller("spiffe://cluster.local/ns/batch/sa/scorer", "cluster.local")
	d := authz.decision with data.access_manifest as tenant_manifest
		with input as object.union(http(batch, "h", "POST", "/v2/models/image/infer"), {"end_user": null})
	d == {"allowed": true, "code": "allowed", "rule": "batch-anything"}
}

# Compiled globs (ext-authz/src/manifest.ts compileGlob): literal segments, one "*" per segment, a trailing /**, and the regex fallback.
glob(segments, below, trailing) := {"segments": segments, "below": below, "trailing_slash": trailing, "regex": null}

glob_manifest(paths) := object.union(manifest, {"rules": [{
	"name": "g", "action": "allow",
	"callers": {"exact": {"spiffe://cluster.local/ns/gateway/sa/api-gateway": true}, "prefixes": []},
	"hosts": null, "methods": null, "paths": paths,
}]})

glob_allows(paths, path) if {
	d := authz.decision with data.access_manifest as glob_manifest(paths)
		with input as http(gateway, "h", "GET", path)
	d.allowed
}

test_a_star_matches_within_one_segment_only if {
	g := [glob(["", "v1", {"prefix": "m-", "suffix": ":predict"}], false, false)]
	glob_allows(g, "/v1/m-bert:predict")
	glob_allows(g, "/v1/m-:predict")
	not glob_allows(g, "/v1/m:predict")
	not glob_allows(g, "/v1/m-a/b:predict")
	not glob_allows(g, "/v1/m-bert:predict/")
}

test_a_trailing_double_star_matches_the_path_and_below if {
	g := [glob(["", "admin"], true, false)]
	glob_allows(g, "/admin")
	glob_allows(g, "/admin/")
	glob_allows(g, "/admin/users/1")
	not glob_allows(g, "/administrator")
	glob_allows([glob([""], true, false)], "/")
}

test_trailing_slash_is_matched_only_when_compiled_in if {
	not glob_allows([glob(["", "weights"], false, false)], "/weights/")
	glob_allows([glob(["", "weights"], false, true)], "/weights/")
	glob_allows([glob(["", "weights"], false, true)], "/weights")
}

test_several_stars_in_a_segment_use_the_regex if {
	g := [{"segments": [], "below": false, "trailing_slash": false, "regex": "^/v1/[^/]*-[^/]*$"}]
	glob_allows(g, "/v1/a-b")
	not glob_allows(g, "/v1/ab")
}
