# policy.rego against the table in cases.json: every request gets the
# decision infergate's own policy gives it (test/bench/opa-envoy-policy.test.ts
# checks the table against infergate). Run by that test as
#   opa test policy.rego policy_test.rego cases.json
package envoy.authz_test

import rego.v1

import data.envoy.authz

# The input opa-envoy-plugin builds from a CheckRequest (envoyauth/request.go):
# the request as protojson, plus parsed_path, the path without its query,
# leading slashes trimmed, split on "/" (no table path needs percent-decoding).
envoy_input(c) := {
	"attributes": {
		"source": source(c.principal),
		"request": {"http": {
			"method": c.method,
			"host": c.host,
			"path": c.path,
			"headers": {":authority": c.host, ":method": c.method, ":path": c.path},
		}},
	},
	"parsed_path": split(trim_left(split(c.path, "?")[0], "/"), "/"),
	"parsed_query": {},
	"version": {"encoding": "protojson", "ext_authz": "v3"},
}

source(principal) := {} if principal == null

source(principal) := {"principal": principal} if principal != null

decisions contains [c.name, got] if {
	some c in data.cases
	got := authz.allow with input as envoy_input(c)
}

mismatches contains [name, got] if {
	some c in data.cases
	some [name, got] in decisions
	name == c.name
	got != c.allowed
}

test_every_request_in_the_table_gets_infergates_decision if {
	count(decisions) == count(data.cases)
	print("mismatches [name, OPA-Envoy allow]:", mismatches)
	count(mismatches) == 0
}

# The example manifest's quarantined workload has no allow rule, so the table
# cannot see the quarantine in a decision (infergate reports it only as the
# reason code); the rule itself is checked here.
test_the_quarantine_list_is_the_manifests if {
	authz.quarantined with input as {"attributes": {"source": {"principal": "spiffe://cluster.local/ns/ml/sa/compromised"}}}
	not authz.quarantined with input as {"attributes": {"source": {"principal": "spiffe://cluster.local/ns/gateway/sa/api-gateway"}}}
}

test_the_table_has_allowed_and_denied_requests if {
	some c1 in data.cases
	c1.allowed
	some c2 in data.cases
	not c2.allowed
}
