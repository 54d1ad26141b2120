package authz

import (
	"github.com/cedar-policy/cedar-go/types"
	xast "github.com/cedar-policy/cedar-go/x/exp/ast"
)

// Building a cedar-go Record costs about a microsecond (it sorts, hashes and
// copies its map), more than evaluating a typical policy. Cedar names
// attributes only statically (`e.attr`, `e["attr"]`, `e has attr`), so the
// attributes a policy can read are known at load: Decide builds only the
// attributes that some candidate policy names, on any object. An attribute
// no candidate names cannot be observed by any of them (entity equality,
// `in` and `is` never look at attributes), so leaving it out does not change
// the decision. The one way to observe a record whole is to use `context` as
// a value (`context == {…}`), which makes the policy need every context
// attribute. Likewise parents are observable only through `in`: without it
// in any candidate's conditions, entities are built without parents.

// attrSet is a set of the attribute names of the schema's entity types and
// contexts, one bit each.
type attrSet uint32

// Attribute names of the schema. TestAttrNamesCoverSchema keeps the list
// complete.
const (
	attrKeyID attrSet = 1 << iota
	attrPrincipals
	attrSerial
	attrFingerprint
	attrAuth
	attrPath
	attrName
	attrExists
	attrSize
	attrMode
	attrUID
	attrNlink
	attrSourceIP
	attrNow
	attrSessionID
	attrScriptSHA256
	attrTransport
	attrArgv
	attrArgs

	// needParents is not an attribute: the conditions use `in` (or the
	// scope is left to cedar-go), so entities need their parents.
	needParents

	attrContext = attrSourceIP | attrNow | attrSessionID | attrScriptSHA256 | attrTransport | attrArgv | attrArgs
	attrUser    = attrKeyID | attrPrincipals | attrSerial | attrFingerprint | attrAuth
)

// attrNames maps each attribute name of the schema to its bit.
var attrNames = map[types.String]attrSet{
	"key_id": attrKeyID, "principals": attrPrincipals, "serial": attrSerial,
	"fingerprint": attrFingerprint, "auth": attrAuth,
	"path": attrPath, "name": attrName, "exists": attrExists, "size": attrSize,
	"mode": attrMode, "uid": attrUID, "nlink": attrNlink,
	"source_ip": attrSourceIP, "now": attrNow, "session_id": attrSessionID,
	"script_sha256": attrScriptSHA256, "transport": attrTransport,
	"argv": attrArgv, "args": attrArgs,
}

// attrsNamed returns the attributes the conditions of pol can read, and
// needParents when they use `in`.
func attrsNamed(pol *xast.Policy) attrSet {
	var need attrSet
	contextUses, contextReads := 0, 0
	reads := func(s xast.StrOpNode) {
		need |= attrNames[s.Value]
		if v, ok := s.Arg.(xast.NodeTypeVariable); ok && v.Name == "context" {
			contextReads++
		}
	}
	for _, c := range pol.Conditions {
		xast.Inspect(xast.NewNode(c.Body), func(n xast.IsNode) bool {
			switch n := n.(type) {
			case xast.NodeTypeAccess:
				reads(n.StrOpNode)
			case xast.NodeTypeHas:
				reads(n.StrOpNode)
			case xast.NodeTypeVariable:
				if n.Name == "context" {
					contextUses++
				}
			case xast.NodeTypeIn, xast.NodeTypeIsIn:
				need |= needParents
			}
			return true
		})
	}
	if contextUses > contextReads {
		need |= attrContext // context used as a whole value
	}
	return need
}
