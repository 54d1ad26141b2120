package authz

import (
	"path"
	"strings"

	"github.com/cedar-policy/cedar-go/types"
)

// requestIDs are the entity uids of a request and the directory whose chain
// of ancestors is in its entity graph. It is small and built for every
// request; the entities themselves only when cedar-go evaluates a policy.
type requestIDs struct {
	principal types.EntityUID
	role      types.EntityUID
	resource  types.EntityUID
	// dirPath is the directory whose ancestors, itself included, are the
	// Dir entities of the request: the parent of a File, the Dir itself;
	// "" for Command and Service.
	dirPath string
}

// newRequestIDs returns the uids of req, whose resource kind and path have
// been checked by checkRequest.
func newRequestIDs(req *Request) requestIDs {
	ids := requestIDs{
		principal: types.NewEntityUID(typeUser, types.String(req.Principal.UserID)),
		role:      types.NewEntityUID(typeRole, types.String(req.Principal.Role)),
	}
	p := types.String(req.Resource.Path)
	switch req.Resource.Kind {
	case KindFile:
		ids.resource = types.NewEntityUID(typeFile, p)
		ids.dirPath = path.Dir(req.Resource.Path)
	case KindDir:
		ids.resource = types.NewEntityUID(typeDir, p)
		ids.dirPath = req.Resource.Path
	case KindCommand:
		ids.resource = types.NewEntityUID(typeCommand, p)
	case KindService:
		ids.resource = types.NewEntityUID(typeService, p)
	}
	return ids
}

// resourceIn reports whether anc is an ancestor of the resource in the
// graph requestEntities serves: a Dir on the chain of a File or Dir (a Dir's
// chain starts at itself).
func (ids *requestIDs) resourceIn(anc types.EntityUID) bool {
	if anc.Type != typeDir {
		return false
	}
	_, ok := ancestorDepth(ids.dirPath, string(anc.ID))
	return ok
}

// requestEntities is the entity store of one request. It implements
// types.EntityGetter by computing an entity from the request the first time
// cedar-go asks for it and keeping it for the rest of the decision, so a
// request pays only for the entities its policies touch. It holds:
//
//   - Keyhole::User::"<UserID>", parent Keyhole::Role::"<Role>", with
//     key_id, principals, serial, fingerprint and auth;
//   - Keyhole::Role::"<Role>", no parents, no attributes;
//   - the resource: Keyhole::File::"<path>" (parent Dir::"<dirname>"; path,
//     name, exists and the optional size, mode, uid, nlink that are set),
//     Keyhole::Command::"<path>" {path} or Keyhole::Service::"<name>" {name};
//   - for File and Dir resources every Keyhole::Dir from the resource's
//     directory (a Dir resource itself) up to Dir::"/", each {path} with its
//     parent directory as parent; Dir::"/" has no parent.
//
// Entities carry only the attributes in needs, and parents only with
// needParents (see attrs.go). Decide checks policy scopes itself
// (scope.go), so cedar-go asks for entities only when a condition reads an
// attribute or uses `in`.
//
// Any other uid is unknown, as Cedar expects of an entity missing from the
// store. A requestEntities is used by one goroutine, for one decision.
type requestEntities struct {
	requestIDs
	req   Request // a copy, so Decide's own request stays on its stack
	needs attrSet
	users *memo[userKey, types.Entity] // the set's last principal; nil: none

	user   types.Entity
	userOK bool
	res    types.Entity
	resOK  bool
	dirs   []types.Entity // dirs[n] is the ancestor with n components, built when UID.Type != ""
}

// Get implements types.EntityGetter.
func (e *requestEntities) Get(uid types.EntityUID) (types.Entity, bool) {
	switch uid.Type {
	case typeUser:
		if uid != e.principal {
			return types.Entity{}, false
		}
		if !e.userOK {
			k := userKey{needs: e.needs & (attrUser | needParents), p: e.req.Principal}
			if e.users != nil {
				e.user = e.users.get(k, (*userKey).entity)
			} else {
				e.user = k.entity()
			}
			e.userOK = true
		}
		return e.user, true
	case typeRole:
		return types.Entity{UID: uid}, uid == e.role
	case typeDir:
		return e.dir(string(uid.ID))
	case typeFile, typeCommand, typeService:
		if uid == e.resource {
			if !e.resOK {
				e.res, e.resOK = e.buildResource(), true
			}
			return e.res, true
		}
	}
	return types.Entity{}, false
}

// serialLong maps a certificate serial to a Cedar Long. Serials above the
// largest Long keep their bits and read as negative numbers, so distinct
// serials stay distinct (clamping would merge them).
func serialLong(s uint64) types.Long { return types.Long(int64(s)) }

// buildResource returns the File, Command or Service resource entity; a Dir
// resource is built by dir.
func (e *requestEntities) buildResource() types.Entity {
	r := &e.req.Resource
	ent := types.Entity{UID: e.resource}
	m := make(types.RecordMap, 7)
	switch e.resource.Type {
	case typeFile:
		if e.needs&needParents != 0 {
			ent.Parents = types.NewEntityUIDSet(types.NewEntityUID(typeDir, types.String(e.dirPath)))
		}
		setString(m, e.needs, attrPath, "path", r.Path)
		setString(m, e.needs, attrName, "name", path.Base(r.Path))
		if e.needs&attrExists != 0 {
			m["exists"] = types.Boolean(r.Exists)
		}
		optLong(m, e.needs, attrSize, "size", r.Size)
		optLong(m, e.needs, attrMode, "mode", r.Mode)
		optLong(m, e.needs, attrUID, "uid", r.UID)
		optLong(m, e.needs, attrNlink, "nlink", r.Nlink)
	case typeCommand:
		setString(m, e.needs, attrPath, "path", r.Path)
	case typeService:
		setString(m, e.needs, attrName, "name", r.Path)
	}
	if len(m) > 0 {
		ent.Attributes = types.NewRecord(m)
	}
	return ent
}

// setString sets m[k] = v when bit is in needs.
func setString(m types.RecordMap, needs, bit attrSet, k types.String, v string) {
	if needs&bit != 0 {
		m[k] = types.String(v)
	}
}

// optLong sets m[k] = *v when bit is in needs and v is non-nil.
func optLong(m types.RecordMap, needs, bit attrSet, k types.String, v *int64) {
	if needs&bit != 0 && v != nil {
		m[k] = types.Long(*v)
	}
}

// dir returns the Dir entity id when id is e.dirPath or one of its
// ancestors, building it on first use.
func (e *requestEntities) dir(id string) (types.Entity, bool) {
	n, ok := ancestorDepth(e.dirPath, id)
	if !ok {
		return types.Entity{}, false
	}
	if e.dirs == nil {
		d, _ := ancestorDepth(e.dirPath, e.dirPath)
		e.dirs = make([]types.Entity, d+1)
	}
	if ent := e.dirs[n]; ent.UID.Type != "" {
		return ent, true
	}
	ent := types.Entity{UID: types.NewEntityUID(typeDir, types.String(id))}
	if e.needs&attrPath != 0 {
		ent.Attributes = types.NewRecord(types.RecordMap{"path": types.String(id)})
	}
	if n > 0 && e.needs&needParents != 0 {
		ent.Parents = types.NewEntityUIDSet(types.NewEntityUID(typeDir, types.String(parentDir(id))))
	}
	e.dirs[n] = ent
	return ent, true
}

// ancestorDepth reports whether dir is dirPath or one of its ancestors and,
// if so, its number of path components ("/" has 0, "/a/b" has 2). dirPath
// must be absolute and clean; "" has no ancestors.
func ancestorDepth(dirPath, dir string) (int, bool) {
	if dirPath == "" {
		return 0, false
	}
	if dir == "/" {
		return 0, true
	}
	if len(dir) < 2 || dir[len(dir)-1] == '/' || !strings.HasPrefix(dirPath, dir) {
		return 0, false
	}
	if len(dirPath) > len(dir) && dirPath[len(dir)] != '/' {
		return 0, false // "/var/log/app" is not an ancestor of "/var/log/application"
	}
	return strings.Count(dir, "/"), true
}

// parentDir returns the parent of a clean absolute directory other than "/".
func parentDir(dir string) string {
	i := strings.LastIndexByte(dir, '/')
	if i <= 0 {
		return "/"
	}
	return dir[:i]
}

// stringSet returns ss as a Cedar Set of Strings.
func stringSet(ss []string) types.Set {
	vs := make([]types.Value, len(ss))
	for i, s := range ss {
		vs[i] = types.String(s)
	}
	return types.NewSet(vs...)
}
