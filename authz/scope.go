package authz

import (
	cedar "github.com/cedar-policy/cedar-go"
	"github.com/cedar-policy/cedar-go/ast"
	"github.com/cedar-policy/cedar-go/types"
	xast "github.com/cedar-policy/cedar-go/x/exp/ast"
)

// A policy's scope (principal, action, resource) is a conjunction in front
// of its conditions that cannot err: `==`, `in` and `is` on the request's
// entities. Load indexes policies by action and compiles the principal and
// resource scope; Decide checks them in Go against the entity graph
// requestEntities serves, and hands cedar-go only the candidates whose scope
// matched, each compiled without the scope it was checked for (its body).
// For a candidate, policy = scope && conditions = true && conditions, so the
// body gives the same result and the same errors; a policy whose scope does
// not match would have evaluated to false without error, so skipping it
// changes nothing. The gain: cedar-go no longer walks the directory chain or
// builds the principal for every `in`, and a candidate without conditions
// is known to match, so when every candidate is one, Decide needs neither
// entities nor cedar-go.

// scopeOp is the form of one scope constraint.
type scopeOp uint8

const (
	scopeUnknown scopeOp = iota // a form Load does not compile: always a candidate, cedar-go checks it
	scopeAll                    // principal / resource
	scopeEq                     // == E
	scopeIn                     // in E
	scopeIs                     // is T
	scopeIsIn                   // is T in E
)

// scopeCheck is one compiled scope constraint.
type scopeCheck struct {
	op     scopeOp
	typ    types.EntityType
	entity types.EntityUID
}

// scopeFilter is what Decide knows of a policy before evaluating it.
type scopeFilter struct {
	principal scopeCheck
	resource  scopeCheck
	forbid    bool // the policy's effect is forbid
	// needsEval: a matching scope does not decide the policy, because it has
	// when/unless clauses or a scope part Decide leaves to cedar-go.
	needsEval bool
	// needs are the attributes the conditions can read.
	needs attrSet
}

// newEntry compiles a validated policy for Decide. actionExact says the
// action index holds it under exactly the actions its action scope matches.
func newEntry(id string, p *cedar.Policy, actionExact bool) entry {
	pol := (*xast.Policy)(p.AST())
	f := scopeFilter{
		principal: newScopeCheck(pol.Principal),
		resource:  newScopeCheck(pol.Resource),
		forbid:    pol.Effect == xast.EffectForbid,
		needsEval: len(pol.Conditions) > 0 || !actionExact,
		needs:     attrsNamed(pol),
	}
	body := *pol
	if actionExact {
		body.Action = xast.ScopeTypeAll{}
	}
	if f.principal.op != scopeUnknown {
		body.Principal = xast.ScopeTypeAll{}
	} else {
		f.needsEval, f.needs = true, f.needs|needParents
	}
	if f.resource.op != scopeUnknown {
		body.Resource = xast.ScopeTypeAll{}
	} else {
		f.needsEval, f.needs = true, f.needs|needParents
	}
	return entry{
		id:    cedar.PolicyID(id),
		body:  cedar.NewPolicyFromAST((*ast.Policy)(&body)),
		scope: f,
	}
}

// newScopeCheck compiles one principal or resource scope.
func newScopeCheck(n xast.IsScopeNode) scopeCheck {
	switch s := n.(type) {
	case xast.ScopeTypeAll:
		return scopeCheck{op: scopeAll}
	case xast.ScopeTypeEq:
		return scopeCheck{op: scopeEq, entity: s.Entity}
	case xast.ScopeTypeIn:
		return scopeCheck{op: scopeIn, entity: s.Entity}
	case xast.ScopeTypeIs:
		return scopeCheck{op: scopeIs, typ: s.Type}
	case xast.ScopeTypeIsIn:
		return scopeCheck{op: scopeIsIn, typ: s.Type, entity: s.Entity}
	default:
		return scopeCheck{op: scopeUnknown}
	}
}

// scopeActions returns the action names a policy's action scope matches,
// all=true when it matches every action, and exact=false when the scope
// has a form this code does not narrow (the policy then goes under every
// action and cedar-go checks the scope). The schema has no action groups,
// so `action in A` matches exactly A.
func scopeActions(p *cedar.Policy) (names []string, all, exact bool) {
	switch s := (*xast.Policy)(p.AST()).Action.(type) {
	case xast.ScopeTypeAll:
		return nil, true, true
	case xast.ScopeTypeEq:
		if s.Entity.Type == typeAction {
			return []string{string(s.Entity.ID)}, false, true
		}
	case xast.ScopeTypeIn:
		if s.Entity.Type == typeAction {
			return []string{string(s.Entity.ID)}, false, true
		}
	case xast.ScopeTypeInSet:
		for _, e := range s.Entities {
			if e.Type != typeAction {
				return nil, true, false
			}
			names = append(names, string(e.ID))
		}
		return names, false, true
	}
	return nil, true, false
}

// match reports whether the scope holds for the request of ids.
func (f *scopeFilter) match(ids *requestIDs) bool {
	return f.principal.matchPrincipal(ids) && f.resource.matchResource(ids)
}

// matchPrincipal reports whether the principal of ids satisfies c; its one
// ancestor is its role.
func (c *scopeCheck) matchPrincipal(ids *requestIDs) bool {
	switch c.op {
	case scopeEq:
		return c.entity == ids.principal
	case scopeIn:
		return c.entity == ids.principal || c.entity == ids.role
	case scopeIs:
		return c.typ == ids.principal.Type
	case scopeIsIn:
		return c.typ == ids.principal.Type && (c.entity == ids.principal || c.entity == ids.role)
	default:
		return true
	}
}

// matchResource reports whether the resource of ids satisfies c.
func (c *scopeCheck) matchResource(ids *requestIDs) bool {
	switch c.op {
	case scopeEq:
		return c.entity == ids.resource
	case scopeIn:
		return c.entity == ids.resource || ids.resourceIn(c.entity)
	case scopeIs:
		return c.typ == ids.resource.Type
	case scopeIsIn:
		return c.typ == ids.resource.Type && (c.entity == ids.resource || ids.resourceIn(c.entity))
	default:
		return true
	}
}
