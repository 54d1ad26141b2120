// Package authz is the only code in keyhole that knows Cedar: it owns the
// embedded Cedar schema, loading and strict validation of policy files, the
// entities a request is evaluated against, Decide, the one door through
// which every host operation is authorized, and Store, which holds the set
// in force for a policy directory and reloads it.
//
// Invariants:
//   - Default deny: a request no permit matches is denied.
//   - Forbid overrides permit.
//   - Errors deny: a policy whose evaluation errs makes the whole decision
//     deny, whatever its effect, and is named in Decision.Policies and
//     Decision.Errors, each a PolicyError naming the policy. (cedar-go skips an erring policy; keyhole does not
//     fail open.) A malformed request (unknown action, a resource kind the
//     action does not apply to, a path that is not absolute and clean, an
//     empty user or role) is denied with an "authz: …" entry in Errors and
//     no policies.
//   - Strict schema: every policy is validated against the embedded schema
//     in strict mode at load; a set with any invalid policy is refused as a
//     whole, with every problem reported as "file:line".
//   - Ids are unique: every policy carries a non-empty @id annotation, unique
//     across all files of a set; ids are what audit lines and denials name.
//   - Immutable: a PolicySet's policies never change after Load returns it;
//     it is safe for concurrent use. (Its only moving parts are two
//     one-entry caches of built Cedar values, swapped atomically; see
//     memo.go.) A new policy text means a new PolicySet.
//   - Reload swaps whole sets: a Store (reload.go) holds the set in force
//     for a policy directory. Reload (on SIGHUP) and Watch (on file change)
//     read, parse and validate the whole directory and only then swap one
//     pointer; a set that fails to load is refused, logged with file:line
//     and audited as policy.reload, and the last good set stays. A caller
//     that needs one consistent view (a session) takes Store.Current once
//     and keeps it. Watch acts on a read only when a second read a quiet
//     period later finds the same bytes, so a file saved in place is not
//     loaded cut off unless its writer pauses longer than that; files should
//     still be renamed into place.
//
// Entities are computed on demand from the Request, not stored: the principal
// Keyhole::User::"<UserID>" in Keyhole::Role::"<Role>", the resource, and for
// files and directories the chain of Keyhole::Dir ancestors up to
// Keyhole::Dir::"/", so `resource in Keyhole::Dir::"/var/log/app"` matches
// exactly the objects under that directory.
//
// Decide is built for speed without changing what cedar-go would decide
// (reference_test.go checks it against plain cedar.Authorize over every
// policy with every entity): policies are indexed by action and, within an
// action, by the user or role and the directory or resource their scopes
// name (index.go), so a request looks only at the policies that can match
// it; scopes are checked in Go before cedar-go sees a policy (scope.go);
// and entities carry only the attributes some candidate policy names
// (attrs.go). Policies that name no principal or resource in their scope
// but carry conditions are evaluated by cedar-go on every request they
// can apply to.
package authz
