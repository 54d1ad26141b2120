package authz

import (
	"net/netip"
	"slices"
	"sync/atomic"
	"time"

	"github.com/cedar-policy/cedar-go/types"
)

// Within a session hostops asks Decide about one principal, in one context
// that changes only in now, and building a Cedar record costs more than
// evaluating a typical policy. So a PolicySet keeps the last principal
// entity and the last context record it built, keyed by everything they
// are built from (only the attributes asked for), and reuses them when the
// next request has the same key.

// memoKey is the key of a memo: comparable by value, and owned copies of
// any slices it holds, so a caller that later changes its slice does not
// change the stored key.
type memoKey[K any] interface {
	equal(K) bool
	owned() K
}

// memo is a one-entry cache, safe for concurrent use: an entry is never
// changed after it is stored, and a miss stores a new one.
type memo[K memoKey[K], V any] struct {
	last atomic.Pointer[memoEntry[K, V]]
}

type memoEntry[K any, V any] struct {
	key K
	val V
}

// get returns the value for k, built by build(k) on a miss.
func (m *memo[K, V]) get(k K, build func(*K) V) V {
	if e := m.last.Load(); e != nil && e.key.equal(k) {
		return e.val
	}
	v := build(&k)
	m.last.Store(&memoEntry[K, V]{key: k.owned(), val: v})
	return v
}

// contextKey is what a context record is built from: the context
// attributes asked for, each field set only when asked for.
type contextKey struct {
	needs                                    attrSet // context attributes only
	exec                                     bool
	sourceIP                                 netip.Addr
	now                                      int64 // Unix milliseconds
	sessionID, scriptSHA256, transport, argv string
	args                                     []string
}

// newContextKey returns the key of c for the attributes in needs; exec says
// the action's context declares argv and args.
func newContextKey(c *Context, exec bool, needs attrSet) contextKey {
	k := contextKey{needs: needs & attrContext, exec: exec}
	if !exec {
		k.needs &^= attrArgv | attrArgs
	}
	if k.needs&attrSourceIP != 0 {
		k.sourceIP = c.SourceIP.Unmap().WithZone("")
		if !k.sourceIP.IsValid() {
			k.sourceIP = netip.IPv4Unspecified()
		}
	}
	if k.needs&attrNow != 0 {
		now := c.Now
		if now.IsZero() {
			now = time.Now()
		}
		k.now = now.UnixMilli()
	}
	if k.needs&attrSessionID != 0 {
		k.sessionID = c.SessionID
	}
	if k.needs&attrScriptSHA256 != 0 {
		k.scriptSHA256 = c.ScriptSHA256
	}
	if k.needs&attrTransport != 0 {
		k.transport = c.Transport
	}
	if k.needs&attrArgv != 0 {
		k.argv = c.Argv
	}
	if k.needs&attrArgs != 0 {
		k.args = c.Args
	}
	return k
}

func (k contextKey) equal(o contextKey) bool {
	return k.needs == o.needs && k.exec == o.exec && k.sourceIP == o.sourceIP && k.now == o.now &&
		k.sessionID == o.sessionID && k.scriptSHA256 == o.scriptSHA256 && k.transport == o.transport &&
		k.argv == o.argv && slices.Equal(k.args, o.args)
}

func (k contextKey) owned() contextKey {
	k.args = slices.Clone(k.args)
	return k
}

// record builds the context record of k.
func (k *contextKey) record() types.Record {
	if k.needs == 0 {
		return types.Record{}
	}
	m := make(types.RecordMap, 7)
	if k.needs&attrSourceIP != 0 {
		m["source_ip"] = types.IPAddr(netip.PrefixFrom(k.sourceIP, k.sourceIP.BitLen()))
	}
	if k.needs&attrNow != 0 {
		m["now"] = types.NewDatetimeFromMillis(k.now)
	}
	setString(m, k.needs, attrSessionID, "session_id", k.sessionID)
	setString(m, k.needs, attrScriptSHA256, "script_sha256", k.scriptSHA256)
	setString(m, k.needs, attrTransport, "transport", k.transport)
	setString(m, k.needs, attrArgv, "argv", k.argv)
	if k.needs&attrArgs != 0 {
		m["args"] = stringSet(k.args)
	}
	return types.NewRecord(m)
}

// userKey is what a principal entity is built from.
type userKey struct {
	needs attrSet // user attributes and needParents only
	p     Principal
}

func (k userKey) equal(o userKey) bool {
	return k.needs == o.needs && k.p.UserID == o.p.UserID && k.p.Role == o.p.Role && k.p.Serial == o.p.Serial &&
		k.p.Fingerprint == o.p.Fingerprint && k.p.Auth == o.p.Auth && slices.Equal(k.p.Principals, o.p.Principals)
}

func (k userKey) owned() userKey {
	k.p.Principals = slices.Clone(k.p.Principals)
	return k
}

// entity builds the principal entity of k.
func (k *userKey) entity() types.Entity {
	p := &k.p
	ent := types.Entity{UID: types.NewEntityUID(typeUser, types.String(p.UserID))}
	role := types.NewEntityUID(typeRole, types.String(p.Role))
	if k.needs&needParents != 0 {
		ent.Parents = types.NewEntityUIDSet(role)
	}
	if k.needs&attrUser == 0 {
		return ent
	}
	m := make(types.RecordMap, 5)
	setString(m, k.needs, attrKeyID, "key_id", p.UserID)
	if k.needs&attrPrincipals != 0 {
		m["principals"] = stringSet(p.Principals)
	}
	if k.needs&attrSerial != 0 {
		m["serial"] = serialLong(p.Serial)
	}
	setString(m, k.needs, attrFingerprint, "fingerprint", p.Fingerprint)
	setString(m, k.needs, attrAuth, "auth", p.Auth)
	ent.Attributes = types.NewRecord(m)
	return ent
}
