# The default infergate policy: implements the access manifest, which the
# server compiles and loads as data.access_manifest (see ext-authz/src/manifest.ts).
#
# Order of judgement: foreign trust domain, quarantine, deny rules, allow
# rules (and, for an end user's request, the tier's routes); nothing
# matching is a deny. The decision always names a reason code and, where one
# applies, the rule that decided. End-user claims (input.end_user) were
# verified by the server before the policy runs; a request without a token
# has end_user null.
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
} else := deny("tier_forbids", allow_matches[0]) if {
	count(allow_matches) > 0
	tier_forbids
} else := {"allowed": true, "code": "allowed", "rule": allow_matches[0]} if {
	count(allow_matches) > 0
} else := deny("no_token", null) if {
	end_user == null
	count(rules_wanting_a_token) > 0
} else := deny("no_matching_rule", null) if {
	manifest.rules
}

deny(code, rule) := {"allowed": false, "code": code, "rule": rule}

# Manifest order is kept so the first matching rule is the one reported.
deny_matches := [r.name | some r in manifest.rules; r.action == "deny"; rule_matches(r)]

allow_matches := [r.name | some r in manifest.rules; r.action == "allow"; rule_matches(r)]

end_user := object.get(input, "end_user", null)

rule_matches(r) if {
	route_matches(r)
	claims_match(r)
}

route_matches(r) if {
	matches_callers(r.callers)
	host_matches(r.hosts)
	method_matches(r.methods)
	path_matches(r.paths)
}

# Allow rules this request would meet but for the end user they require.
rules_wanting_a_token := [r.name | some r in manifest.rules; r.action == "allow"; needs_end_user(r); route_matches(r)]

# Claim requirements: tenant in the set, tier in the set, every scope held.
# A rule without them matches with or without an end user.
needs_end_user(r) if object.get(r, "tenants", null) != null

needs_end_user(r) if object.get(r, "tiers", null) != null

needs_end_user(r) if object.get(r, "scopes", null) != null

claims_match(r) if not needs_end_user(r)

claims_match(r) if {
	needs_end_user(r)
	end_user != null
	claim_in(object.get(r, "tenants", null), end_user.tenant)
	claim_in(object.get(r, "tiers", null), end_user.tier)
	scopes_held(object.get(r, "scopes", null))
}

claim_in(set, _) if set == null

claim_in(set, value) if {
	is_string(value)
	set[value]
}

scopes_held(required) if required == null

scopes_held(required) if {
	required != null
	every s in required {
		s in end_user.scopes
	}
}

# With a tiers section, an end user's request needs a listed tier whose
# routes include this one; workload traffic (no end user) is not tiered.
tier_forbids if {
	end_user != null
	is_object(object.get(manifest, "tiers", null))
	not tier_allows_route
}

tier_allows_route if {
	tier := manifest.tiers[end_user.tier]
	path_matches(tier.paths)
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
	some glob in paths
	glob_matches(glob)
}

# Globs are compiled to segments (ext-authz/src/manifest.ts compileGlob): a
# literal, or a prefix and suffix around one "*". No regular expression is
# compiled per evaluation; only a segment with several "*" carries one.
path_parts := split(input.path, "/")

glob_matches(g) if {
	is_string(g.regex)
	regex.match(g.regex, input.path)
}

glob_matches(g) if {
	g.regex == null
	segment_count_matches(g)
	every i, s in g.segments {
		segment_matches(s, path_parts[i])
	}
}

segment_count_matches(g) if {
	g.below
	count(path_parts) >= count(g.segments)
}

segment_count_matches(g) if {
	not g.below
	count(path_parts) == count(g.segments)
}

segment_count_matches(g) if {
	not g.below
	g.trailing_slash
	count(path_parts) == count(g.segments) + 1
	path_parts[count(path_parts) - 1] == ""
}

segment_matches(s, part) if {
	is_string(s)
	s == part
}

segment_matches(s, part) if {
	is_object(s)
	startswith(part, s.prefix)
	endswith(part, s.suffix)
	count(part) >= count(s.prefix) + count(s.suffix)
}
