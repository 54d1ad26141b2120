// Package inventory reads the host inventories of a fleet and selects hosts
// from them with Ansible's host patterns.
//
// Three formats are read, detected by extension and content (Load):
//   - Ansible INI: [group], [group:children], [group:vars], key=value host
//     variables on the host line, ranges (web[01:50], db-[a:f],
//     app[1:10:2]), host:port;
//   - Ansible YAML: top-level groups (usually all) with hosts, children and
//     vars, nested to any depth (JSON is read as YAML);
//   - a plain list: one [user@]host[:port] per line, # comments.
//
// Variables follow Ansible's precedence: all < parent group < child group
// < host; groups at the same depth apply in name order (or by
// ansible_group_priority). The connection variables ansible_host,
// ansible_port, ansible_user and a ProxyJump found in
// ansible_ssh_common_args or ansible_ssh_extra_args become the fields of
// Host. Load also reads the group_vars/NAME and host_vars/NAME files
// beside the inventory, with Ansible's precedence (inventory group vars <
// group_vars/all < group_vars/GROUP < inventory host vars <
// host_vars/HOST); vault-encrypted files there are skipped. Templates
// ({{ … }}), inventory scripts and plugins, and inventory directories are
// not read.
//
// Select takes Ansible's patterns: a:b and a,b (union), a:&b
// (intersection), a:!b (exclusion), globs, ~regex, @file, all and *; unions
// apply first, then intersections, then exclusions. Every term must match
// something and the result must not be empty: a typo never silently
// selects fewer (or, behind a !, more) hosts than meant.
//
// Invariants:
//   - Parsing never panics; every error names the file and, where there is
//     one, the line, and is a *ParseError or wraps one.
//   - Hosts are returned in inventory order (the order in which each host
//     first appears in the file), each once.
//   - An Inventory is immutable after Load and safe for concurrent use;
//     Select returns copies.
//   - Expansion is bounded: an inventory holds at most MaxHosts hosts.
package inventory
