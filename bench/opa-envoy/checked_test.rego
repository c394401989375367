# checked.rego, which the benchmark points OPA-Envoy at: the same true for
# every request policy.rego allows, and for every request it denies a value
# OPA-Envoy cannot read as a decision (so it answers with a gRPC error).
package infergate_bench_test

import rego.v1

import data.envoy.authz_test.envoy_input
import data.infergate_bench

test_allowed_requests_stay_allowed if {
	every c in [c | some c in data.cases; c.allowed] {
		infergate_bench.allow == true with input as envoy_input(c)
	}
}

test_denied_requests_become_a_value_that_is_not_a_decision if {
	every c in [c | some c in data.cases; not c.allowed] {
		is_string(infergate_bench.allow) with input as envoy_input(c)
	}
}
