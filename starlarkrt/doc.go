// Package starlarkrt owns the Starlark runtime that runs one keyhole
// script: the dialect, the predeclared modules (thin wrappers over
// hostops), the limits and the mapping of errors to exit statuses.
//
// Invariants:
//   - Scripts reach the host only through the Host given in Options; the
//     runtime has no file, network or process access of its own, and load()
//     is off.
//   - Each Run builds its own starlark.Thread: Print goes to Options.Stdout
//     under the output cap, Load is nil, the step limit is set and the
//     thread is cancelled when the wall-clock limit passes or the context
//     ends. A Run is not shared between goroutines.
//   - Whatever the script does, Run returns a Result; a panic inside the
//     interpreter becomes an INTERNAL result, never a crash of the caller.
package starlarkrt
