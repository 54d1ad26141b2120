package authz

import (
	"github.com/cedar-policy/cedar-go/types"
)

// Each action's bucket is indexed by the entities its policies' scopes
// name, so that Decide looks at the policies that can match a request
// instead of walking the whole bucket. The index only narrows: every policy
// it returns is still checked by scopeFilter.match, and it returns every
// policy whose scope can match (the argument is on keyPrincipal and
// keyResource), so Decide's candidates, and their order, are exactly those
// of a walk over the bucket.
//
// A policy is filed under its principal key (the entity E of `principal ==
// E`, `principal in E`, `principal is T in E`), or with the policies that
// name no principal; within that, under its resource key (the directory of
// `resource in Keyhole::Dir::"d"` and `resource is T in Keyhole::Dir::"d"`,
// the entity of `resource == E` and of `in` any other entity), or in the
// rest. A request looks up its user and its role, and within each, its
// resource and the directories of its chain; the rest is always taken.

// scopeIndex indexes the policies of one bucket by position.
type scopeIndex struct {
	byPrincipal  map[types.EntityUID]*resourceIndex
	anyPrincipal resourceIndex
}

// resourceIndex holds positions in a bucket, each list in increasing order.
type resourceIndex struct {
	exact map[types.EntityUID][]int32
	dirs  map[string][]int32
	// maxDepth is the number of components of the deepest directory in
	// dirs ("/" has 0): a request's chain is looked up no deeper.
	maxDepth int
	rest     []int32
}

// keyPrincipal returns the entity a principal scope requires the
// request's principal or its role to be, ok=false when the scope does not
// require one. matchPrincipal holds only if the principal (==, in, is in)
// or its role (in, is in) equals that entity, so a request can find every
// policy its principal can match by looking up its user and its role.
func keyPrincipal(c *scopeCheck) (types.EntityUID, bool) {
	switch c.op {
	case scopeEq, scopeIn, scopeIsIn:
		return c.entity, true
	}
	return types.EntityUID{}, false
}

// keyResource returns where a resource scope is filed: dir, the directory
// the resource must be or be under, when the scope is `in` or `is in` a
// Keyhole::Dir; exact, the entity the resource must be, for `==` and for
// `in` or `is in` any other entity (only Dirs have children, so `in` a
// File, Command or Service is equality); neither for the other scopes.
// matchResource for an `in` a Dir holds only if the Dir is the resource
// or on its chain (resourceIn), that is, one of the directories a request
// looks up.
func keyResource(c *scopeCheck) (dir string, exact types.EntityUID, kind int) {
	switch c.op {
	case scopeEq:
		return "", c.entity, keyExact
	case scopeIn, scopeIsIn:
		if c.entity.Type == typeDir {
			return string(c.entity.ID), types.EntityUID{}, keyDir
		}
		return "", c.entity, keyExact
	}
	return "", types.EntityUID{}, keyNone
}

// Kinds of resource key.
const (
	keyNone = iota
	keyExact
	keyDir
)

// newScopeIndex indexes policies, a bucket's entries.
func newScopeIndex(policies []entry) scopeIndex {
	var x scopeIndex
	for i := range policies {
		f := &policies[i].scope
		r := &x.anyPrincipal
		if p, ok := keyPrincipal(&f.principal); ok {
			if x.byPrincipal == nil {
				x.byPrincipal = make(map[types.EntityUID]*resourceIndex)
			}
			if r = x.byPrincipal[p]; r == nil {
				r = &resourceIndex{}
				x.byPrincipal[p] = r
			}
		}
		r.add(int32(i), &f.resource)
	}
	return x
}

// add files position i, whose resource scope is c.
func (r *resourceIndex) add(i int32, c *scopeCheck) {
	dir, exact, kind := keyResource(c)
	switch kind {
	case keyDir:
		if r.dirs == nil {
			r.dirs = make(map[string][]int32)
		}
		r.dirs[dir] = append(r.dirs[dir], i)
		r.maxDepth = max(r.maxDepth, dirDepth(dir))
	case keyExact:
		if r.exact == nil {
			r.exact = make(map[types.EntityUID][]int32)
		}
		r.exact[exact] = append(r.exact[exact], i)
	default:
		r.rest = append(r.rest, i)
	}
}

// dirDepth returns the number of components of a directory key, as
// ancestorDepth counts them ("/" has 0, "/a/b" has 2).
func dirDepth(dir string) int {
	if dir == "/" {
		return 0
	}
	n := 0
	for i := 0; i < len(dir); i++ {
		if dir[i] == '/' {
			n++
		}
	}
	return n
}

// positions is a set of positions in a bucket, one bit each.
type positions []uint64

// newPositions returns an empty set for a bucket of n policies, in buf
// when it is big enough.
func newPositions(n int, buf []uint64) positions {
	w := (n + 63) / 64
	if w <= len(buf) {
		clear(buf[:w])
		return buf[:w]
	}
	return make(positions, w)
}

func (s positions) addAll(l []int32) {
	for _, i := range l {
		s[i>>6] |= 1 << (uint(i) & 63)
	}
}

// lookup adds to s every position of x whose scope can match ids.
func (x *scopeIndex) lookup(s positions, ids *requestIDs) {
	x.anyPrincipal.lookup(s, ids)
	if len(x.byPrincipal) == 0 {
		return
	}
	if r := x.byPrincipal[ids.principal]; r != nil {
		r.lookup(s, ids)
	}
	if ids.role != ids.principal {
		if r := x.byPrincipal[ids.role]; r != nil {
			r.lookup(s, ids)
		}
	}
}

// lookup adds to s the rest, the policies about the resource, and those
// about any directory of its chain.
func (r *resourceIndex) lookup(s positions, ids *requestIDs) {
	s.addAll(r.rest)
	if len(r.exact) > 0 {
		s.addAll(r.exact[ids.resource])
	}
	if len(r.dirs) == 0 || ids.dirPath == "" {
		return
	}
	// The chain of dirPath, as ancestorDepth accepts it: "/", then every
	// prefix that ends before a '/', then dirPath itself.
	p := ids.dirPath
	s.addAll(r.dirs["/"])
	if p == "/" {
		return
	}
	depth := 0
	for i := 1; i <= len(p) && depth < r.maxDepth; i++ {
		if i == len(p) || p[i] == '/' {
			depth++
			s.addAll(r.dirs[p[:i]])
		}
	}
}
