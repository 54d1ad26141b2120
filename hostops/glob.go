//go:build linux

package hostops

import (
	"path"
	"sort"
	"strconv"
	"strings"
)

// DefaultMaxGlobDirs is the most directories one Glob lists.
const DefaultMaxGlobDirs = 10_000

// Glob returns the paths that match pattern, sorted. pattern is absolute;
// each component is matched as path.Match matches it (*, ?, [...], \ to
// quote; no **), and a name that starts with "." is matched only by a
// component that starts with "." too, as in the shell.
//
// The components before the first one with a wildcard name a directory
// (symlinks and ".." there resolve as List resolves them); every directory
// Glob visits is listed with List, authorized as "list" with one decision
// event each, and names come from those listings only. A denial of the
// first directory is ACCESS_DENIED, as are its other errors (not found,
// not a directory); a deeper directory that is denied, missing or not a
// directory is skipped, its denial audited, and nothing under it is
// returned. Entries are descended into when they are directories or
// symlinks (a symlink is followed by List and its target authorized).
// Components after the first wildcard must not be "." or "..". More
// matches than the host's list cap, or more than DefaultMaxGlobDirs
// directories, is LIMIT_EXCEEDED. A pattern without wildcards lists its
// parent directory and returns itself if it is there.
func (h *Host) Glob(pattern string) ([]string, error) {
	if msg := h.checkGlob(pattern); msg != "" {
		// Refused before any directory is listed: one decision event.
		bad := badInput(actionList, pattern, msg)
		_, e := h.run(operation{action: actionList, arg: pattern, check: func() *Error { return bad }})
		if e == bad {
			e.Message = "glob: " + msg // not the audit log's or the operation cap's error
		}
		return nil, e
	}
	comps, first := splitPattern(pattern)
	g := globber{h: h, limit: h.maxList()}
	start := "/" + strings.Join(comps[:first], "/")
	if err := g.walk(start, comps[first:], true); err != nil {
		return nil, err
	}
	sort.Strings(g.out)
	if g.out == nil {
		g.out = []string{}
	}
	return g.out, nil
}

// checkGlob says why pattern cannot be globbed, or "".
func (h *Host) checkGlob(pattern string) string {
	if msg := checkPath(pattern); msg != "" {
		return msg
	}
	comps, first := splitPattern(pattern)
	if first < 0 {
		return "pattern must name something below /, got " + strconv.Quote(pattern)
	}
	for _, c := range comps[first:] {
		if c == "." || c == ".." {
			return "pattern must not hold . or .. after its first wildcard, got " + strconv.Quote(pattern)
		}
		if _, err := path.Match(c, ""); err != nil {
			return "bad pattern " + strconv.Quote(c) + ": " + err.Error()
		}
	}
	return ""
}

// splitPattern returns the components of pattern and the index of the
// first one with a wildcard (the last one when none has).
func splitPattern(pattern string) (comps []string, first int) {
	comps = strings.FieldsFunc(pattern, func(r rune) bool { return r == '/' })
	first = len(comps) - 1
	for i, c := range comps {
		if hasMeta(c) {
			return comps, i
		}
	}
	return comps, first
}

type globber struct {
	h      *Host
	limit  int
	listed int
	out    []string
}

func (g *globber) walk(dir string, rest []string, top bool) error {
	if g.listed++; g.listed > DefaultMaxGlobDirs {
		return &Error{Kind: KindLimitExceeded, Message: "glob: more than " + strconv.Itoa(DefaultMaxGlobDirs) + " directories to list", Action: actionList, Resource: dir}
	}
	entries, err := g.h.List(dir)
	if err != nil {
		if top {
			return err
		}
		if e, ok := err.(*Error); ok && (e.Kind == KindLimitExceeded || e.Kind == KindInternal) {
			return err
		}
		return nil // denied, gone or not a directory: skipped
	}
	pat, last := rest[0], len(rest) == 1
	for _, e := range entries {
		if strings.HasPrefix(e.Name, ".") && !strings.HasPrefix(pat, ".") {
			continue
		}
		if ok, _ := path.Match(pat, e.Name); !ok {
			continue
		}
		p := joinName(dir, e.Name)
		if last {
			if len(g.out) == g.limit {
				return &Error{Kind: KindLimitExceeded, Message: "glob: more than " + strconv.Itoa(g.limit) + " matches", Action: actionList, Resource: dir}
			}
			g.out = append(g.out, p)
			continue
		}
		if e.Type != "dir" && e.Type != "symlink" {
			continue
		}
		if err := g.walk(p, rest[1:], false); err != nil {
			return err
		}
	}
	return nil
}

func hasMeta(c string) bool { return strings.ContainsAny(c, `*?[\`) }

func joinName(dir, name string) string {
	if dir == "/" {
		return "/" + name
	}
	return dir + "/" + name
}
