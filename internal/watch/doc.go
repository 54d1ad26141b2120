// Package watch turns file-system change events in a few directories into
// calls of one function, after the directories have been quiet for a
// while. It is the one file watcher of the server: the policy directory,
// the keys file and the KRL are all reloaded through it.
//
// Invariants:
//   - Directories are watched, not files, so files that are created,
//     removed or renamed into place (as editors and configuration tools
//     save them) are seen.
//   - A burst of events gives one call once the directories have been
//     quiet for Options.Debounce, and a steady stream of events cannot put
//     the call off for more than MaxWaits quiet periods.
//   - Events lost to an overflowing queue are treated as a change, so a
//     change is never missed silently.
//   - A watched directory that goes away is watched again once it is back
//     (checked every Options.Retry), and that return counts as a change.
//   - The function is called from one goroutine, never concurrently with
//     itself; the returned channel is closed once it will not be called
//     again.
package watch
