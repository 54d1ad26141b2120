// Package hostops is the only code in keyhole that touches the host. Every
// operation is pin → authorize → act → audit:
//
//  1. Pin: the path, which must be absolute and free of NUL bytes, is
//     opened as an O_PATH descriptor (openat2 with RESOLVE_NO_MAGICLINKS
//     where the kernel has it, probed once; plain open otherwise). Symlinks
//     and ".." are resolved by the kernel; the object reached is the one
//     acted on.
//  2. Name: the canonical path is what the kernel reports for the
//     descriptor (/proc/self/fd/N), accepted only if looking that path up
//     again finds the same object (same device and inode). When that name
//     is, byte for byte, the path openat2 just walked to pin the object,
//     that walk is the look-up and none is repeated (see pinned.name).
//  3. Authorize: that path, with the pinned object's attributes (File: size,
//     mode, uid, nlink; or Dir), is put to the Decider. An evaluation error
//     denies, and so does a Host without a Decider.
//  4. Audit: exactly one decision event per operation, written before
//     anything is acted on, allowed or denied, including operations refused
//     before the policy was asked (bad path) and allowed ones that find
//     nothing to act on (not found, wrong type). A path whose name is not
//     the object's (a /proc magic link) is refused even where the policy
//     allows the name, and its event is a deny with the reason.
//  5. Act: only after an allow, and only through the pinned descriptor
//     (reopened through its /proc magic link and checked to be the same
//     object), never through the path again. A rename, a swapped symlink or
//     a replaced directory between check and use therefore changes nothing:
//     what is read is what was authorized.
//
// Steps 1 to 4 are one function, run (op.go), that every operation goes
// through: an operation brings only its input check and how it pins what it
// acts on (an operation struct); the decision, its audit line (which also
// charges the operation cap and fails closed when it cannot be written) and
// the error are run's alone.
//
// Paths that name nothing do not reveal what exists where the principal may
// not look. Such a path is walked one component at a time, as the kernel
// walks it, to the deepest object it reaches (a dangling symlink is
// followed by its text); that object's real path, plus the unreached part
// of the path with "." dropped and everything from the first ".." cut, is
// authorized both as a File that does not exist and as a Dir: a forbid of
// either denies, else a permit of either allows (decideMissing). A deny is
// ACCESS_DENIED, an allow NOT_FOUND (or the error that stopped the walk),
// so the answer is the same whether or not the object exists, as a file or
// as a directory, where the principal may not look. Operations that create
// (write, mkdir) authorize what they create instead.
//
// Programs (Exec, Service) run in a process group of their own that is
// killed when they end; in a process that adopts orphans (AdoptOrphans:
// the worker) whatever left the group is killed and reaped too (Sweep).
// Service names are resolved by the service manager to their canonical
// unit before they are authorized (ServiceUnitSuffix).
//
// Object types are checked on the pinned descriptor after authorization (so
// a denied path never reveals its type) and before any open: a FIFO,
// socket or device is never opened for reading.
//
// Operations that change a directory (Write, Append, Mkdir, Remove,
// Rename, Copy's destination) act on a name in a directory: the parent is
// pinned as above, the final component is one name, and every act is an
// *at syscall relative to the pinned parent that does not follow a symlink
// in that name (openat O_NOFOLLOW, linkat, renameat, unlinkat, mkdirat),
// after checking that the name still holds what was authorized. A parent
// swapped for a symlink after pinning therefore changes nothing: the act
// happens in the directory that was authorized. Write and Copy follow a
// symlink in the final name to an existing target, authorize that target
// and replace it; Remove and Rename act on the symlink itself. Writes are
// atomic (see TempPrefix); in-place changes (Append, Chmod) refuse regular
// files with more than one hard link, whose other names may lie anywhere;
// FIFOs, sockets and devices are never written or chmod'ed. An allowed
// operation that changes the host does nothing under Host.DryRun.
//
// Transports that move bytes by offset (sftp) use streamed operations
// (stream_linux.go): StreamRead pins and authorizes a file once and returns
// a handle that reads it by offset; StartUpload authorizes a write or
// create once and returns an Upload whose bytes go to an unnamed file that
// Commit renames into place (Abort, or a Commit that finds the name
// changed, leaves the old file); both charge every byte to Host.Counters
// and hold their descriptors until closed. ListVisible lists a directory
// and leaves out entries the principal may not stat.
//
// Every descriptor of the other operations is closed before the operation
// returns. Reading and
// listing are capped (Host.MaxReadBytes, Host.MaxListEntries). Errors are
// *Error values whose Message never holds file contents. A Host is safe
// for concurrent use. The package is Linux-only: it needs /proc.
package hostops
