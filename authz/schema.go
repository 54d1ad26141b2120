package authz

import (
	_ "embed"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/cedar-policy/cedar-go/types"
	"github.com/cedar-policy/cedar-go/x/exp/schema"
	"github.com/cedar-policy/cedar-go/x/exp/schema/resolved"
	"github.com/cedar-policy/cedar-go/x/exp/schema/validate"
)

//go:embed keyhole.cedarschema
var schemaText string

// namespace is the Cedar namespace of every keyhole entity type and action.
const namespace = "Keyhole"

// Cedar entity types of the schema.
var (
	typeUser    = types.EntityType(namespace + "::User")
	typeRole    = types.EntityType(namespace + "::Role")
	typeDir     = types.EntityType(namespace + "::" + KindDir)
	typeFile    = types.EntityType(namespace + "::" + KindFile)
	typeCommand = types.EntityType(namespace + "::" + KindCommand)
	typeService = types.EntityType(namespace + "::" + KindService)
	typeAction  = types.EntityType(namespace + "::Action")
)

// Schema returns the Cedar schema, in Cedar's human-readable schema format,
// that every policy is validated against. It is the contract for policy
// authors.
func Schema() string { return schemaText }

// action describes one action of the schema as Decide needs it.
type action struct {
	name      string
	uid       types.EntityUID
	resources []string // resource kinds (KindFile, …) the action applies to
	exec      bool     // context carries argv and args
}

// parseSchema parses and resolves the embedded schema. Each call returns a
// fresh value, so callers never share cedar-go's structures.
func parseSchema() (*resolved.Schema, error) {
	var s schema.Schema
	s.SetFilename("keyhole.cedarschema")
	if err := s.UnmarshalCedar([]byte(schemaText)); err != nil {
		return nil, fmt.Errorf("authz: parse embedded schema: %w", err)
	}
	r, err := s.Resolve()
	if err != nil {
		return nil, fmt.Errorf("authz: resolve embedded schema: %w", err)
	}
	return r, nil
}

// newValidator returns the strict validator for the embedded schema. It is
// built once per process and shared: parsing and resolving the schema was
// most of what loading a small policy set cost, and a worker process loads
// one for every script. Sharing is safe because cedar-go's Validator is
// only written by validate.New; Policy reads the schema and keeps its
// working state in locals (see TestValidatorShared).
var newValidator = sync.OnceValues(func() (*validate.Validator, error) {
	r, err := parseSchema()
	if err != nil {
		return nil, err
	}
	return validate.New(r, validate.WithStrict()), nil
})

// schemaActions is the action table derived once from the schema, keyed by
// action name. It is read-only after it is built.
var schemaActions = sync.OnceValues(func() (map[string]action, error) {
	r, err := parseSchema()
	if err != nil {
		return nil, err
	}
	acts := make(map[string]action, len(r.Actions))
	for uid, a := range r.Actions {
		if uid.Type != typeAction || a.AppliesTo == nil {
			continue
		}
		act := action{name: string(uid.ID), uid: uid}
		for _, rt := range a.AppliesTo.Resources {
			kind, ok := strings.CutPrefix(string(rt), namespace+"::")
			if !ok {
				return nil, fmt.Errorf("authz: schema action %s: resource type %s outside namespace", uid, rt)
			}
			act.resources = append(act.resources, kind)
		}
		slices.Sort(act.resources)
		_, act.exec = a.AppliesTo.Context["argv"]
		acts[act.name] = act
	}
	return acts, nil
})
