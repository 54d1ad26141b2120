package authz

// The Cedar integration-test corpus (cedar-go's module ships it as
// corpus-tests.tar.gz: thousands of policy sets, each with its schema,
// entities and requests, and the decisions the Rust implementation gave)
// run through keyhole's evaluation core.
//
// keyhole's schema and entity model are fixed (Keyhole::User in one Role,
// the Dir chain), so the corpus cannot go through Load and Decide whole.
// What it does go through is everything of Decide that does not depend on
// that model: each policy is parsed as Load parses it and compiled by
// newEntry (its principal and resource scope taken out and compiled to a
// scopeCheck, the rest kept as the body cedar-go evaluates); the
// candidates are the policies whose compiled scope matches, in the
// corpus's entity graph; and the decision is made by decideScopes when
// every candidate is decided by its scope, else by evaluate, the same
// functions Decide calls, with the corpus's entities as the entity getter.
//
// The decisions must be the corpus's, except where keyhole differs on
// purpose: a request during which some policy erred is denied (cedar-go
// skips the erring policy and may allow), with the erring policies named.
// The test asserts that difference on every such request. The corpus never
// allows a request during which a policy erred, so for each such request
// the test also adds an unconditional permit to the set: plain cedar-go
// then allows (unless a forbid matched) and keyhole must still deny.

import (
	"archive/tar"
	"compress/gzip"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	cedar "github.com/cedar-policy/cedar-go"
	"github.com/cedar-policy/cedar-go/types"
	"github.com/cedar-policy/cedar-go/x/exp/schema"
	exptypes "github.com/cedar-policy/cedar-go/x/exp/types"
)

type corpusCase struct {
	Schema   string `json:"schema"`
	Policies string `json:"policies"`
	Entities string `json:"entities"`
	Requests []struct {
		Desc      string          `json:"description"`
		Principal types.EntityUID `json:"principal"`
		Action    types.EntityUID `json:"action"`
		Resource  types.EntityUID `json:"resource"`
		Context   types.Record    `json:"context"`
		Decision  string          `json:"decision"`
		Reasons   []string        `json:"reason"`
		Errors    []string        `json:"errors"`
	} `json:"requests"`
}

// corpusArchive returns the path of cedar-go's corpus-tests.tar.gz.
func corpusArchive(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-json", "github.com/cedar-policy/cedar-go").Output()
	if err != nil {
		t.Fatalf("go list cedar-go: %v", err)
	}
	var m struct{ Dir string }
	if err := json.Unmarshal(out, &m); err != nil || m.Dir == "" {
		t.Fatalf("go list cedar-go: no module directory in %s", out)
	}
	return filepath.Join(m.Dir, "corpus-tests.tar.gz")
}

// readCorpus returns every regular file of the archive by name.
func readCorpus(t *testing.T, path string) map[string][]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	tr := tar.NewReader(gz)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		files[h.Name] = b
	}
	return files
}

// corpusSet is a corpus policy set compiled as Load compiles a set.
type corpusSet []entry

// permitAll is the policy added to sets whose requests err.
const permitAllID = "keyhole-permit-all"

var permitAll = func() *cedar.Policy {
	pl, err := cedar.NewPolicyListFromBytes("all.cedar", []byte(`permit (principal, action, resource);`))
	if err != nil {
		panic(err)
	}
	return pl[0]
}()

// compileCorpus compiles src as Load does, and returns it also as plain
// cedar-go holds it, with the ids cedar.NewPolicySetFromBytes gives, which
// the corpus's reasons and errors use.
func compileCorpus(src []byte) (corpusSet, *cedar.PolicySet, error) {
	pl, err := cedar.NewPolicyListFromBytes("policy.cedar", src)
	if err != nil {
		return nil, nil, err
	}
	var set corpusSet
	plain := cedar.NewPolicySet()
	for i, p := range pl {
		id := "policy" + strconv.Itoa(i)
		// The action scope stays in the body: corpus schemas have action
		// groups, keyhole's has none.
		set = append(set, newEntry(id, p, false))
		plain.Add(cedar.PolicyID(id), p)
	}
	return set, plain, nil
}

// decide is Decide's core over an arbitrary entity graph.
func (set corpusSet) decide(ents types.EntityMap, req types.Request) Decision {
	var cands []*entry
	needsEval := false
	for i := range set {
		e := &set[i]
		if matchGraph(&e.scope.principal, req.Principal, ents) && matchGraph(&e.scope.resource, req.Resource, ents) {
			cands = append(cands, e)
			needsEval = needsEval || e.scope.needsEval
		}
	}
	if !needsEval {
		return decideScopes(Decision{}, cands)
	}
	return evaluate(Decision{}, cands, ents, req)
}

// matchGraph is scopeCheck's matchPrincipal and matchResource for a
// general entity graph: `in` is equality or transitive ancestry.
func matchGraph(c *scopeCheck, uid types.EntityUID, ents types.EntityMap) bool {
	in := func() bool { return c.entity == uid || ancestorOf(ents, uid, c.entity) }
	switch c.op {
	case scopeEq:
		return c.entity == uid
	case scopeIn:
		return in()
	case scopeIs:
		return c.typ == uid.Type
	case scopeIsIn:
		return c.typ == uid.Type && in()
	default:
		return true
	}
}

// ancestorOf reports whether anc is a transitive parent of uid.
func ancestorOf(ents types.EntityMap, uid, anc types.EntityUID) bool {
	seen := map[types.EntityUID]bool{}
	todo := []types.EntityUID{uid}
	for len(todo) > 0 {
		u := todo[len(todo)-1]
		todo = todo[:len(todo)-1]
		e, ok := ents[u]
		if !ok {
			continue
		}
		for p := range e.Parents.All() {
			if p == anc {
				return true
			}
			if !seen[p] {
				seen[p] = true
				todo = append(todo, p)
			}
		}
	}
	return false
}

func TestCorpus(t *testing.T) {
	t.Parallel()
	files := readCorpus(t, corpusArchive(t))
	var names []string
	for name := range files {
		if strings.HasSuffix(name, ".json") && !strings.HasSuffix(name, ".entities.json") {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	// One case in three (one in sixteen in -short), chosen by name so
	// every run checks the same ones; KEYHOLE_CORPUS=all checks them all.
	step := 3
	if testing.Short() {
		step = 16
	}
	if os.Getenv("KEYHOLE_CORPUS") == "all" {
		step = 1
	}
	var requests, same, erredDenied, erredAllowWanted, parseSkipped int
	for i := 0; i < len(names); i += step {
		name := names[i]
		var c corpusCase
		if err := json.Unmarshal(files[name], &c); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		set, plain, err := compileCorpus(files[c.Policies])
		if err != nil {
			t.Errorf("%s: keyhole cannot parse policies cedar-go parses: %v", name, err)
			continue
		}
		var s schema.Schema
		s.SetFilename("corpus.cedarschema")
		if err := s.UnmarshalCedar(files[c.Schema]); err != nil {
			t.Fatalf("%s: schema: %v", name, err)
		}
		rs, err := s.Resolve()
		if err != nil {
			t.Fatalf("%s: resolve schema: %v", name, err)
		}
		var em exptypes.EntityMap
		if err := em.UnmarshalJSONWithSchema(files[c.Entities], rs); err != nil {
			parseSkipped++ // cedar-go's own corpus test fails such cases too; none are expected
			t.Errorf("%s: entities: %v", name, err)
			continue
		}
		ents := types.EntityMap(em)
		for _, r := range c.Requests {
			requests++
			got := set.decide(ents, types.Request{Principal: r.Principal, Action: r.Action, Resource: r.Resource, Context: r.Context})
			wantAllow := r.Decision == "allow"
			var erred []string
			for _, e := range got.Errors {
				erred = append(erred, e.Policy)
			}
			if len(r.Errors) == 0 {
				// No error: the same decision, by the same policies.
				if got.Allow != wantAllow || len(got.Errors) > 0 || !slices.Equal(sorted(got.Policies), sorted(r.Reasons)) {
					t.Errorf("%s %s: got allow=%v by %q (errors %q), corpus says %s by %q", name, r.Desc, got.Allow, got.Policies, got.Errors, r.Decision, r.Reasons)
					continue
				}
				same++
				continue
			}
			// An error: keyhole denies, naming the same erring policies, and
			// on a corpus deny the same forbids as well.
			want := slices.Clone(r.Errors)
			if !wantAllow {
				want = append(want, r.Reasons...)
			}
			if got.Allow || !slices.Equal(sorted(erred), sorted(r.Errors)) || !slices.Equal(sorted(got.Policies), sorted(want)) {
				t.Errorf("%s %s: got allow=%v by %q (errors %q); corpus %s by %q with errors in %q: keyhole must deny naming them",
					name, r.Desc, got.Allow, got.Policies, got.Errors, r.Decision, r.Reasons, r.Errors)
				continue
			}
			erredDenied++
			if wantAllow {
				erredAllowWanted++
			}

			// The same request with a permit-all added: plain cedar-go
			// skips the erring policies and allows unless a forbid
			// matched; keyhole denies.
			creq := types.Request{Principal: r.Principal, Action: r.Action, Resource: r.Resource, Context: r.Context}
			plain.Add(permitAllID, permitAll)
			refDec, refDiag := cedar.Authorize(plain, ents, creq)
			plain.Remove(permitAllID)
			aug := append(slices.Clone(set), newEntry(permitAllID, permitAll, false))
			got = aug.decide(ents, creq)
			if len(refDiag.Errors) == 0 {
				t.Errorf("%s %s: the request no longer errs with a permit-all added", name, r.Desc)
				continue
			}
			if got.Allow {
				t.Errorf("%s %s: with a permit-all, cedar-go says %v with errors %v; keyhole allowed (%+v)", name, r.Desc, refDec, refDiag.Errors, got)
				continue
			}
			if refDec == cedar.Allow {
				erredAllowWanted++
			}
		}
	}
	t.Logf("corpus: %d cases, %d requests: %d decided as Cedar does, %d with errors denied, %d of them allowed by plain cedar-go once a permit-all is added; %d cases with unreadable entities",
		(len(names)+step-1)/step, requests, same, erredDenied, erredAllowWanted, parseSkipped)
	if requests == 0 || same == 0 || erredAllowWanted == 0 {
		t.Fatal("the corpus did not exercise both agreement and keyhole's deny-on-error difference")
	}
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}
