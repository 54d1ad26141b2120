// Package authz is the only code in keyhole that knows Cedar: it owns the
// embedded Cedar schema, loading and strict validation of policy files, the
// entities a request is evaluated against, and Decide, the one door through
// which every host operation is authorized.
//
// Invariants:
//   - Default deny: a request no permit matches is denied.
//   - Forbid overrides permit.
//   - Errors deny: a policy whose evaluation errs makes the whole decision
//     deny, whatever its effect, and is named in Decision.Policies and
//     Decision.Errors. (cedar-go skips an erring policy; keyhole does not
//     fail open.) A malformed request (unknown action, a resource kind the
//     action does not apply to, a path that is not absolute and clean, an
//     empty user or role) is denied with an "authz: …" entry in Errors and
//     no policies.
//   - Strict schema: every policy is validated against the embedded schema
//     in strict mode at load; a set with any invalid policy is refused as a
//     whole, with every problem reported as "file:line".
//   - Ids are unique: every policy carries a non-empty @id annotation, unique
//     across all files of a set; ids are what audit lines and denials name.
//   - Immutable: a PolicySet never changes after Load returns it, so it is
//     safe for concurrent use without locks. Reloading means loading a new
//     set and swapping the pointer (the caller owns the swap).
//
// Entities are computed on demand from the Request, not stored: the principal
// Keyhole::User::"<UserID>" in Keyhole::Role::"<Role>", the resource, and for
// files and directories the chain of Keyhole::Dir ancestors up to
// Keyhole::Dir::"/", so `resource in Keyhole::Dir::"/var/log/app"` matches
// exactly the objects under that directory.
package authz
