package worker_test

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/keyhole-dev/keyhole/audit"
	"github.com/keyhole-dev/keyhole/authz"
	"github.com/keyhole-dev/keyhole/internal/workerproto"
	"github.com/keyhole-dev/keyhole/worker"
)

// Two policy sets that decide a stat of /etc/passwd differently.
var (
	denyEtc  = map[string][]byte{"p.cedar": []byte(`@id("no-etc") forbid (principal, action, resource in Keyhole::Dir::"/etc");`)}
	allowEtc = map[string][]byte{"p.cedar": []byte(`@id("etc-stat") permit (principal, action == Keyhole::Action::"stat", resource in Keyhole::Dir::"/etc");`)}
)

const statScript = `v, err = catch(fs.stat, "/etc/passwd")
print(err.kind if err else "allowed")
`

type frame struct {
	typ workerproto.Type
	v   any
}

// serveFrames runs Serve on frames, keeping its input open after
// them, and returns what it wrote and its error.
func serveFrames(t *testing.T, frames ...frame) (prints []string, events []audit.Event, res *workerproto.Result, err error) {
	t.Helper()
	var in, out bytes.Buffer
	w := workerproto.NewWriter(&in)
	for _, f := range frames {
		if err := w.WriteJSON(f.typ, f.v); err != nil {
			t.Fatal(err)
		}
	}
	pr, pw := io.Pipe()
	defer pw.Close()
	err = worker.Serve(io.MultiReader(&in, pr), endAfterResult{&out, pw})
	r := workerproto.NewReader(&out, 0)
	for {
		typ, p, rerr := r.Next()
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			t.Fatal(rerr)
		}
		switch typ {
		case workerproto.TypePrint:
			prints = append(prints, string(p))
		case workerproto.TypeAudit:
			var e audit.Event
			if err := workerproto.Decode(typ, p, &e); err != nil {
				t.Fatal(err)
			}
			events = append(events, e)
		case workerproto.TypeResult:
			res = &workerproto.Result{}
			if err := workerproto.Decode(typ, p, res); err != nil {
				t.Fatal(err)
			}
		}
	}
	return prints, events, res, err
}

func loadSet(t *testing.T, files map[string][]byte) *authz.PolicySet {
	t.Helper()
	ps, err := authz.LoadFiles(files)
	if err != nil {
		t.Fatal(err)
	}
	return ps
}

func preloadOf(t *testing.T, files map[string][]byte) frame {
	return frame{workerproto.TypePreload, &workerproto.Preload{Policies: files, PolicyVersion: loadSet(t, files).Version()}}
}

// startFor is a Start of statScript under the set files; withFiles says
// whether it carries the files or relies on a preload.
func startFor(t *testing.T, files map[string][]byte, withFiles bool) frame {
	st := &workerproto.Start{
		Script:        statScript,
		Principal:     authz.Principal{UserID: "agent-7", Role: "logs", Principals: []string{"logs"}, Auth: "certificate"},
		Context:       authz.Context{Now: time.Now(), SessionID: "s1", Transport: "script"},
		PolicyVersion: loadSet(t, files).Version(),
		Limits:        workerproto.Limits{MaxWall: 10 * time.Second},
	}
	if withFiles {
		st.Policies = files
	}
	return frame{workerproto.TypeStart, st}
}

// TestServeWorkerPreload checks that a preloaded set is used exactly when
// the Start names its version, and that a Start naming another version
// runs under that version's files or not at all.
func TestServeWorkerPreload(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		frames   func(t *testing.T) []frame
		print    string // what the script printed; "" if it did not run
		policies string // the decision's policies
		errKind  string // the result's error kind
		errMsg   string
	}{
		{"preloaded-version-used", func(t *testing.T) []frame {
			return []frame{preloadOf(t, denyEtc), startFor(t, denyEtc, false)}
		}, "ACCESS_DENIED\n", "no-etc", "", ""},
		{"preloaded-version-with-files", func(t *testing.T) []frame {
			return []frame{preloadOf(t, allowEtc), startFor(t, allowEtc, true)}
		}, "allowed\n", "etc-stat", "", ""},
		{"other-version-with-files", func(t *testing.T) []frame {
			return []frame{preloadOf(t, denyEtc), startFor(t, allowEtc, true)}
		}, "allowed\n", "etc-stat", "", ""},
		{"other-version-without-files", func(t *testing.T) []frame {
			return []frame{preloadOf(t, allowEtc), startFor(t, denyEtc, false)}
		}, "", "", "INTERNAL", "policy snapshot is " + loadSet(t, nil).Version() + ", want " + loadSet(t, denyEtc).Version()},
		{"no-preload-without-files", func(t *testing.T) []frame {
			return []frame{startFor(t, denyEtc, false)}
		}, "", "", "INTERNAL", "policy snapshot is"},
		{"other-files-claiming-preloaded-version", func(t *testing.T) []frame {
			st := startFor(t, allowEtc, false)
			st.v.(*workerproto.Start).Policies = denyEtc // ignored: the preload has the version named
			return []frame{preloadOf(t, allowEtc), st}
		}, "allowed\n", "etc-stat", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			prints, events, res, err := serveFrames(t, tt.frames(t)...)
			if err != nil {
				t.Fatalf("Serve: %v", err)
			}
			if res == nil {
				t.Fatal("no result")
			}
			if got := strings.Join(prints, ""); got != tt.print {
				t.Errorf("printed %q, want %q", got, tt.print)
			}
			if tt.errKind != "" {
				if res.Error == nil || res.Error.Kind != tt.errKind || !strings.Contains(res.Error.Message, tt.errMsg) {
					t.Errorf("result %+v, want %s containing %q", res.Error, tt.errKind, tt.errMsg)
				}
				if len(events) != 0 {
					t.Errorf("decisions without a policy: %+v", events)
				}
				return
			}
			if res.Exit != 0 || res.Error != nil {
				t.Errorf("result %+v", res)
			}
			if len(events) != 1 || strings.Join(events[0].Policies, ",") != tt.policies {
				t.Errorf("decisions %+v, want one by %s", events, tt.policies)
			}
		})
	}
}

// TestServeWorkerPreloadRefused checks that a worker given a bad preload
// stops before any script: it writes nothing and fails.
func TestServeWorkerPreloadRefused(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		frames func(t *testing.T) []frame
		err    string
	}{
		{"version-mismatch", func(t *testing.T) []frame {
			return []frame{{workerproto.TypePreload, &workerproto.Preload{Policies: denyEtc, PolicyVersion: loadSet(t, allowEtc).Version()}},
				startFor(t, allowEtc, false)}
		}, "preloaded policy is"},
		{"does-not-load", func(t *testing.T) []frame {
			return []frame{{workerproto.TypePreload, &workerproto.Preload{Policies: map[string][]byte{"x.cedar": []byte("permit")}}},
				startFor(t, allowEtc, true)}
		}, "preloaded policy does not load"},
		{"unknown-field", func(t *testing.T) []frame {
			return []frame{{workerproto.TypePreload, map[string]any{"policies": map[string]any{}, "policy_version": "", "script": "x"}},
				startFor(t, allowEtc, true)}
		}, `unknown field "script"`},
		{"two-preloads", func(t *testing.T) []frame {
			return []frame{preloadOf(t, denyEtc), preloadOf(t, denyEtc), startFor(t, denyEtc, false)}
		}, "first message is preload, want start"},
		{"preload-then-end", func(t *testing.T) []frame {
			return []frame{preloadOf(t, denyEtc)}
		}, "read start"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			frames := tt.frames(t)
			var (
				prints []string
				events []audit.Event
				res    *workerproto.Result
				err    error
			)
			if tt.name == "preload-then-end" {
				// The input ends after the preload, as when the pool discards
				// an idle worker.
				var in, out bytes.Buffer
				if werr := workerproto.NewWriter(&in).WriteJSON(frames[0].typ, frames[0].v); werr != nil {
					t.Fatal(werr)
				}
				err = worker.Serve(&in, &out)
				if out.Len() != 0 {
					t.Errorf("wrote %q", out.String())
				}
			} else {
				prints, events, res, err = serveFrames(t, frames...)
			}
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("error %v, want one containing %q", err, tt.err)
			}
			if len(prints) != 0 || len(events) != 0 || res != nil {
				t.Errorf("wrote prints %q, events %+v, result %+v", prints, events, res)
			}
		})
	}
}

// endAfterResult passes each frame the worker writes to w, and ends the
// worker's input once its Result is written, as the server does when it
// has no other script for it. The worker writes each frame in one Write.
type endAfterResult struct {
	w  io.Writer
	in *io.PipeWriter
}

func (e endAfterResult) Write(p []byte) (int, error) {
	n, err := e.w.Write(p)
	if len(p) > 4 && workerproto.Type(p[4]) == workerproto.TypeResult {
		e.in.Close()
	}
	return n, err
}
