package authz

// Files returns a copy of the source files the set was loaded from, by name
// (as Load or LoadFiles saw them). LoadFiles(p.Files()) rebuilds an
// equivalent set with the same Version: a worker process gets its policy
// this way and checks the version it rebuilt. A nil set has no files.
func (p *PolicySet) Files() map[string][]byte {
	if p == nil {
		return map[string][]byte{}
	}
	return cloneFiles(p.files)
}

// cloneFiles copies a file map and every content slice, so a set never
// shares bytes with its caller.
func cloneFiles(files map[string][]byte) map[string][]byte {
	out := make(map[string][]byte, len(files))
	for name, b := range files {
		out[name] = append([]byte(nil), b...)
	}
	return out
}
