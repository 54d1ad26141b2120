package authz

import (
	"iter"
	"slices"

	cedar "github.com/cedar-policy/cedar-go"
	"github.com/cedar-policy/cedar-go/types"
)

// PolicySet is a loaded, validated set of Cedar policies. Its policies never
// change after Load or LoadFiles returns it, and it is safe for concurrent
// use. The zero value and a nil *PolicySet hold no policies and deny
// everything. A PolicySet must not be copied.
type PolicySet struct {
	version string
	files   map[string][]byte // the source files, by name (snapshot.go)
	ids     []string          // policy ids, in load order (file name, then position)
	// byAction holds, for every action of the schema, the policies whose
	// action scope can match it, in load order. A policy whose action scope
	// does not name an action evaluates to false for it without error, so
	// evaluating only the bucket gives the same decision as the whole set.
	byAction map[string]*bucket

	// The last principal entity and context record Decide built, reused by
	// the next request with the same key (memo.go). They are the only state
	// that changes after load, and are safe for concurrent use.
	users    memo[userKey, types.Entity]
	contexts memo[contextKey, types.Record]
}

// Version returns "sha256:" and the hex SHA-256 of the set's sorted
// (file name, content) pairs. It changes when any file's name or bytes change
// and is stable otherwise; audit lines carry it as policy_version.
func (p *PolicySet) Version() string {
	if p == nil || p.version == "" {
		return emptyVersion
	}
	return p.version
}

// Len returns the number of policies in the set.
func (p *PolicySet) Len() int {
	if p == nil {
		return 0
	}
	return len(p.ids)
}

// IDs returns the @id of every policy, ordered by file name and then by
// position in the file. The caller owns the returned slice.
func (p *PolicySet) IDs() []string {
	if p == nil {
		return nil
	}
	return slices.Clone(p.ids)
}

// entry is one policy of a bucket.
type entry struct {
	id    cedar.PolicyID
	body  *cedar.Policy // the policy without the scope Decide checks itself (scope.go)
	scope scopeFilter
}

// bucket is the action and the policies that may apply to it, in load
// order, indexed by the entities their scopes name (index.go).
type bucket struct {
	action   action
	policies []entry
	index    scopeIndex
}

// candidates are the policies of one request whose scope matched. It
// implements cedar.PolicyIterator with a deterministic order, so a
// decision's policies and errors come out in load order.
type candidates []*entry

// All implements cedar.PolicyIterator.
func (c candidates) All() iter.Seq2[cedar.PolicyID, *cedar.Policy] {
	return func(yield func(cedar.PolicyID, *cedar.Policy) bool) {
		for _, e := range c {
			if !yield(e.id, e.body) {
				return
			}
		}
	}
}
