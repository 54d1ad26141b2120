package authz

// IsAction reports whether name is an action of the keyhole schema
// ("read", "exec", "restart", …). A caller that keeps per-action state
// (metrics) uses it to bound what a worker may name.
func IsAction(name string) bool {
	acts, err := schemaActions()
	if err != nil {
		return false
	}
	_, ok := acts[name]
	return ok
}
