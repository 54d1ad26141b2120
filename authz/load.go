package authz

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"unicode"

	cedar "github.com/cedar-policy/cedar-go"
	"github.com/cedar-policy/cedar-go/types"
	xast "github.com/cedar-policy/cedar-go/x/exp/ast"
	"github.com/cedar-policy/cedar-go/x/exp/schema/validate"
)

// policySuffix is the file name suffix Load reads.
const policySuffix = ".cedar"

// emptyVersion is the Version of a set with no files.
var emptyVersion = versionOf(nil, nil)

// Load reads every "*.cedar" file directly in dir (sorted by name, not
// recursive; names starting with "." are skipped, as editors leave lock and
// swap files there) and returns the validated set. Every problem in every
// file is reported, joined, each as "authz: <dir>/<file>:<line>: …". A
// directory without policy files gives an empty set, which denies
// everything; a missing directory is an error.
func Load(dir string) (*PolicySet, error) {
	files, errs, err := readPolicyFiles(dir)
	if err != nil {
		return nil, err
	}
	return load(dir, files, errs)
}

// readPolicyFiles returns the files Load reads in dir, by name, with an
// error per file it could not read; err when dir itself cannot be read.
func readPolicyFiles(dir string) (files map[string][]byte, errs []error, err error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("authz: read policy dir: %w", err)
	}
	files = make(map[string][]byte)
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || strings.HasPrefix(name, ".") || !strings.HasSuffix(name, policySuffix) {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			errs = append(errs, fmt.Errorf("authz: read policy: %w", err))
			continue
		}
		files[name] = b
	}
	return files, errs, nil
}

// LoadFiles builds a set from file name → content, as Load does for the files
// of a directory. Names are used as given in error messages and in Version;
// they need not end in ".cedar".
func LoadFiles(files map[string][]byte) (*PolicySet, error) {
	return load("", files, nil)
}

// load parses, checks and indexes files. dir only prefixes names in error
// messages, so Version does not depend on where the directory is.
func load(dir string, files map[string][]byte, errs []error) (*PolicySet, error) {
	acts, err := schemaActions()
	if err != nil {
		return nil, err
	}
	v, err := newValidator()
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	slices.Sort(names)

	ps := &PolicySet{
		version:  versionOf(names, files),
		files:    cloneFiles(files),
		byAction: make(map[string]*bucket, len(acts)),
	}
	for name, a := range acts {
		ps.byAction[name] = &bucket{action: a}
	}
	firstAt := make(map[string]string) // id → "file:line" of its first definition
	for _, name := range names {
		display := name
		if dir != "" {
			display = filepath.Join(dir, name)
		}
		pl, err := cedar.NewPolicyListFromBytes(display, files[name])
		if err != nil {
			errs = append(errs, syntaxError(display, err))
			continue
		}
		for _, p := range pl {
			perrs := checkPolicy(v, display, p, firstAt)
			if len(perrs) > 0 {
				errs = append(errs, perrs...)
				continue
			}
			id := string(p.Annotations()["id"])
			ps.ids = append(ps.ids, id)
			scoped, all, exact := scopeActions(p)
			e := newEntry(id, p, exact)
			for an, b := range ps.byAction {
				if all || slices.Contains(scoped, an) {
					b.policies = append(b.policies, e)
				}
			}
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	for _, b := range ps.byAction {
		b.index = newScopeIndex(b.policies)
	}
	return ps, nil
}

// checkPolicy checks one parsed policy's @id and validates it strictly
// against the schema, returning one error per problem. firstAt records where
// each id was first seen.
func checkPolicy(v *validate.Validator, file string, p *cedar.Policy, firstAt map[string]string) []error {
	at := fmt.Sprintf("%s:%d", file, p.Position().Line)
	var errs []error
	label := "policy"
	id, ok := p.Annotations()["id"]
	switch {
	case !ok:
		errs = append(errs, fmt.Errorf("authz: %s: policy has no @id annotation", at))
	case id == "":
		errs = append(errs, fmt.Errorf("authz: %s: policy has an empty @id", at))
	case strings.ContainsFunc(string(id), unicode.IsControl):
		errs = append(errs, fmt.Errorf("authz: %s: policy @id %q holds control characters", at, string(id)))
	default:
		label = fmt.Sprintf("policy %q", string(id))
		if first, dup := firstAt[string(id)]; dup {
			errs = append(errs, fmt.Errorf("authz: %s: %s: duplicate @id, first defined at %s", at, label, first))
		} else {
			firstAt[string(id)] = at
		}
	}
	// An empty policy id keeps cedar-go from prefixing its messages with
	// "for policy `…`, "; the label above names the policy instead.
	pol := (*xast.Policy)(p.AST())
	if err := v.Policy("", pol); err != nil {
		for _, msg := range validationMessages(err) {
			errs = append(errs, fmt.Errorf("authz: %s: %s: %s", at, label, msg))
		}
	}
	for _, uid := range unmatchablePaths(pol) {
		errs = append(errs, fmt.Errorf("authz: %s: %s: %s names a path that is not absolute and clean, so it matches nothing", at, label, uid))
	}
	return errs
}

// unmatchablePaths returns the Dir, File and Command entities a policy
// names whose id is not a clean absolute path. Decide is never asked about
// such a path, so `resource in Keyhole::Dir::"/etc/"` would silently match
// nothing: a forbid that protects nothing.
func unmatchablePaths(pol *xast.Policy) []types.EntityUID {
	var bad []types.EntityUID
	var value func(types.Value)
	value = func(v types.Value) {
		switch v := v.(type) {
		case types.EntityUID:
			if (v.Type == typeDir || v.Type == typeFile || v.Type == typeCommand) && !cleanAbs(string(v.ID)) &&
				!slices.Contains(bad, v) {
				bad = append(bad, v)
			}
		case types.Set:
			for e := range v.All() {
				value(e)
			}
		case types.Record:
			for _, e := range v.All() {
				value(e)
			}
		}
	}
	for _, sc := range []xast.IsScopeNode{pol.Principal, pol.Action, pol.Resource} {
		switch sc := sc.(type) {
		case xast.ScopeTypeEq:
			value(sc.Entity)
		case xast.ScopeTypeIn:
			value(sc.Entity)
		case xast.ScopeTypeIsIn:
			value(sc.Entity)
		}
	}
	for _, c := range pol.Conditions {
		xast.Inspect(xast.NewNode(c.Body), func(n xast.IsNode) bool {
			if v, ok := n.(xast.NodeValue); ok {
				value(v.Value)
			}
			return true
		})
	}
	return bad
}

// validationMessages flattens a validator error into sorted, distinct
// messages: cedar-go reports them in map order and sometimes twice.
func validationMessages(err error) []string {
	var msgs []string
	var walk func(error)
	walk = func(e error) {
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				walk(e)
			}
			return
		}
		msgs = append(msgs, e.Error())
	}
	walk(err)
	slices.Sort(msgs)
	return slices.Compact(msgs)
}

// Positions cedar-go's parser and tokenizer put in their errors.
var (
	parseAt = regexp.MustCompile(`^parse error at <input>:(\d+):(\d+) ("(?:[^"\\]|\\.)*"): (.*)$`)
	tokenAt = regexp.MustCompile(`^<input>:(\d+):(\d+): (.*)$`)
)

// syntaxError rewrites a cedar-go parse error as "authz: file:line:col: …".
func syntaxError(file string, err error) error {
	msg := strings.TrimPrefix(err.Error(), "parser error: ")
	if m := parseAt.FindStringSubmatch(msg); m != nil {
		return fmt.Errorf("authz: %s:%s:%s: syntax error near %s: %s", file, m[1], m[2], m[3], m[4])
	}
	if m := tokenAt.FindStringSubmatch(msg); m != nil {
		return fmt.Errorf("authz: %s:%s:%s: syntax error: %s", file, m[1], m[2], m[3])
	}
	return fmt.Errorf("authz: %s: syntax error: %s", file, msg)
}

// versionOf hashes the sorted (name, content) pairs; lengths are written
// before each field so distinct sets never hash the same input.
func versionOf(names []string, files map[string][]byte) string {
	h := sha256.New()
	var n [binary.MaxVarintLen64]byte
	for _, name := range names {
		h.Write(n[:binary.PutUvarint(n[:], uint64(len(name)))])
		h.Write([]byte(name))
		h.Write(n[:binary.PutUvarint(n[:], uint64(len(files[name])))])
		h.Write(files[name])
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}
