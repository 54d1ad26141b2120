package authz

import (
	"fmt"
	"math/bits"
	"path"
	"slices"
	"strings"
	"sync"

	cedar "github.com/cedar-policy/cedar-go"
	"github.com/cedar-policy/cedar-go/types"
)

// Decide answers one authorization request. It never panics and never
// fails open:
//   - no matching permit → deny, no policies (default deny);
//   - a matching forbid → deny, the matching forbids;
//   - any policy evaluation error → deny, whatever else matched: Policies
//     holds the matching forbids and every erring policy, Errors one
//     "policy-id: message" per erring policy;
//   - otherwise allow, with the matching permits.
//
// A malformed request is denied without evaluating policies, with one
// "authz: …" entry in Errors: an unknown action, a resource kind the action
// does not apply to, an empty user id or role, an empty service name, or a
// File, Dir or Command path that is not absolute and clean (path.Clean) or
// holds a NUL byte. Context.SourceIP is used unmapped and without zone; an
// invalid (unknown) address is presented as 0.0.0.0, which no range but
// 0.0.0.0/0 and 0.0.0.0/8 contains. A zero Context.Now means the time of the
// call. Policies and Errors are in load order. Decide is safe for concurrent
// use.
func (p *PolicySet) Decide(req Request) (d Decision) {
	if p == nil || p.byAction == nil {
		p = emptySet()
	}
	d.Version = p.Version()
	defer func() {
		if r := recover(); r != nil {
			d = Decision{Version: d.Version, Errors: []PolicyError{{Message: fmt.Sprintf("authz: internal error: %v", r)}}}
		}
	}()
	b := p.byAction[req.Action]
	if b == nil {
		return deny(d, fmt.Sprintf("authz: unknown action %q", req.Action))
	}
	if msg := checkRequest(b.action, &req); msg != "" {
		return deny(d, msg)
	}
	ids := newRequestIDs(&req)
	var buf [16]*entry
	var words [32]uint64
	cands := buf[:0]
	needsEval, needs := false, attrSet(0)
	// The index returns a superset of the policies whose scope matches,
	// as positions: walked in increasing order, they are in load order.
	pos := newPositions(len(b.policies), words[:])
	b.index.lookup(pos, &ids)
	for w, word := range pos {
		for word != 0 {
			e := &b.policies[w*64+bits.TrailingZeros64(word)]
			word &= word - 1
			if e.scope.match(&ids) {
				cands = append(cands, e)
				needsEval = needsEval || e.scope.needsEval
				needs |= e.scope.needs
			}
		}
	}
	if !needsEval {
		return decideScopes(d, cands)
	}
	ents := &requestEntities{requestIDs: ids, req: req, needs: needs, users: &p.users}
	creq := types.Request{
		Principal: ids.principal,
		Action:    b.action.uid,
		Resource:  ids.resource,
		Context:   p.contexts.get(newContextKey(&req.Context, b.action.exec, needs), (*contextKey).record),
	}
	return evaluate(d, cands, ents, creq)
}

// evaluate decides with cedar-go among cands, the policies whose scope
// matched, and turns cedar-go's answer into a Decision that never fails
// open: any evaluation error denies. It is the evaluation core of Decide,
// apart from the entity store and the request (corpus_internal_test.go
// runs the Cedar integration corpus through it with the corpus's own).
func evaluate(d Decision, cands []*entry, ents types.EntityGetter, creq types.Request) Decision {
	dec, diag := cedar.Authorize(candidates(slices.Clone(cands)), ents, creq)
	if len(diag.Errors) == 0 || dec == cedar.Deny {
		d.Policies = reasonIDs(diag.Reasons) // permits on allow, forbids on deny
	}
	d.Allow = dec == cedar.Allow && len(diag.Errors) == 0
	for _, e := range diag.Errors {
		d.Policies = append(d.Policies, string(e.PolicyID))
		d.Errors = append(d.Errors, PolicyError{Policy: string(e.PolicyID), Message: e.Message})
	}
	return d
}

// decideScopes decides when every candidate is decided by its scope, which
// matched: each one matches and none can err, so any forbid denies, else any
// permit allows, else default deny.
func decideScopes(d Decision, cands []*entry) Decision {
	for _, e := range cands {
		if e.scope.forbid {
			d.Policies = append(d.Policies, string(e.id))
		}
	}
	if len(d.Policies) > 0 {
		return d
	}
	for _, e := range cands {
		d.Policies = append(d.Policies, string(e.id))
	}
	d.Allow = len(d.Policies) > 0
	return d
}

// emptySet is the set a nil or zero PolicySet decides with: no policies.
var emptySet = sync.OnceValue(func() *PolicySet {
	ps, err := LoadFiles(nil)
	if err != nil {
		return &PolicySet{} // broken embedded schema: every action is unknown
	}
	return ps
})

// deny returns d as a denial for a malformed request.
func deny(d Decision, msg string) Decision {
	d.Allow, d.Policies, d.Errors = false, nil, []PolicyError{{Message: msg}}
	return d
}

// checkRequest returns why req is malformed for action a, or "".
func checkRequest(a action, req *Request) string {
	switch {
	case req.Principal.UserID == "":
		return "authz: empty user id"
	case req.Principal.Role == "":
		return "authz: empty role"
	case !slices.Contains(a.resources, req.Resource.Kind):
		return fmt.Sprintf("authz: action %q does not apply to resource kind %q", a.name, req.Resource.Kind)
	}
	r := &req.Resource
	if r.Kind == KindService {
		if r.Path == "" || strings.IndexByte(r.Path, 0) >= 0 {
			return fmt.Sprintf("authz: invalid service name %q", r.Path)
		}
		return ""
	}
	if !cleanAbs(r.Path) {
		return fmt.Sprintf("authz: %s path %q is not absolute and clean", strings.ToLower(r.Kind), r.Path)
	}
	return ""
}

// cleanAbs reports whether p is an absolute, clean path without NUL bytes.
// path.Clean does not allocate when p is already clean.
func cleanAbs(p string) bool {
	return len(p) > 0 && p[0] == '/' && path.Clean(p) == p && strings.IndexByte(p, 0) < 0
}

// reasonIDs returns the policy ids of rs, nil when there are none.
func reasonIDs(rs []types.DiagnosticReason) []string {
	if len(rs) == 0 {
		return nil
	}
	ids := make([]string, len(rs))
	for i, r := range rs {
		ids[i] = string(r.PolicyID)
	}
	return ids
}
