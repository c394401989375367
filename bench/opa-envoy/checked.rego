# Loaded beside policy.rego by bench/authz-bench.ts, which points the plugin
# at infergate_bench/allow instead of envoy/authz/allow: the same decision,
# except that a denied check becomes an evaluation error (a decision that is
# neither a boolean nor an object), which OPA-Envoy answers with a gRPC error
# that ghz counts. The benchmark sends only requests the policy allows, so
# this is how it sees that every measured answer was an allow.
package infergate_bench

import rego.v1

allow if {
	data.envoy.authz.allow
} else := "denied: the benchmark expects every check to be allowed"
