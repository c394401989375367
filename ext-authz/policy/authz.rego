# The default infergate policy: implements the access manifest, which the
# server compiles and loads as data.access_manifest (see ext-authz/src/manifest.ts).
#
# Order of judgement: foreign trust domain, quarantine, deny rules, allow
# rules; nothing matching is a deny. The decision always names a reason code
# and, where one applies, the rule that decided.
package infergate.authz

import rego.v1

manifest := data.access_manifest

caller := input.caller

# Reached only when the manifest is missing or malformed: fail closed.
default decision := {"allowed": false, "code": "policy_error", "rule": null}

decision := deny("foreign_trust_domain", null) if {
	is_object(manifest.trust_domains)
	not manifest.trust_domains[caller.trust_domain]
} else := deny("quarantined", null) if {
	matches_callers(manifest.quarantine)
} else := deny("denied_by_rule", deny_matches[0]) if {
	count(deny_matches) > 0
} else := {"allowed": true, "code": "allowed", "rule": allow_matches[0]} if {
	count(allow_matches) > 0
} else := deny("no_matching_rule", null) if {
	manifest.rules
}

deny(code, rule) := {"allowed": false, "code": code, "rule": rule}

# Manifest order is kept so the first matching rule is the one reported.
deny_matches := [r.name | some r in manifest.rules; r.action == "deny"; rule_matches(r)]

allow_matches := [r.name | some r in manifest.rules; r.action == "allow"; rule_matches(r)]

rule_matches(r) if {
	matches_callers(r.callers)
	host_matches(r.hosts)
	method_matches(r.methods)
	path_matches(r.paths)
}

matches_callers(set) if set.exact[caller.id]

matches_callers(set) if {
	some prefix in set.prefixes
	startswith(caller.id, prefix)
}

# A rule without hosts, methods or paths matches any; one with them never
# matches a check without an HTTP section (Envoy's network filter).
host_matches(hosts) if hosts == null

host_matches(hosts) if {
	is_string(input.host)
	hosts.exact[input.host]
}

host_matches(hosts) if {
	is_string(input.host)
	some suffix in hosts.suffixes
	endswith(input.host, suffix)
}

method_matches(methods) if methods == null

method_matches(methods) if {
	is_string(input.method)
	methods[input.method]
}

path_matches(paths) if paths == null

path_matches(paths) if {
	is_string(input.path)
	some pattern in paths
	regex.match(pattern, input.path)
}
