// Package mcpserver is keyhole's Model Context Protocol server: the tools
// and resources through which an agent runs scripts on a fleet of keyhole
// hosts, built on the client package (the same identities, known hosts
// and bastions as keyhole run) and the inventory package.
//
// Tools:
//   - run_script runs one script on the hosts named by an Ansible pattern
//     over the inventory (or a list of them), at most Config.Parallel at
//     once, and returns per host its outcome, exit status, result, printed
//     output (capped, with a flag when cut), error and every denied
//     operation, as structured content. A host that fails, or a script
//     that is denied, makes the result an error result (isError) that
//     still carries the structured content; it is never a protocol error.
//     When the call has a progress token, a progress notification is sent
//     as each host ends. Cancelling the call (notifications/cancelled, or
//     the connection's end) closes every host's session, and each server
//     then ends its script.
//   - list_hosts returns the hosts (name, address, port, user, groups)
//     and groups that a pattern selects. It only reads the inventory.
//
// Resources: keyhole://docs/scripts.md, the script API reference
// (docs/scripts.md as built into the binary), and keyhole://inventory,
// the inventory's hosts and groups as JSON.
//
// A Server is safe for concurrent use; each call runs on its own
// connections.
package mcpserver
