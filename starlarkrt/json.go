package starlarkrt

// JSON: the json module, and the conversions between Starlark values and
// JSON-ready Go values that json, args and result share. Every conversion
// is bounded in nesting depth and in size, and none recurses on its input
// without that bound: json.decode reads tokens into an explicit stack, so
// `json.decode("[" * 10000000)` is an INVALID_ARGUMENT error, not a crash.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"

	"github.com/keyhole-dev/keyhole/hostops"
)

// Bounds of JSON values.
const (
	// MaxJSONDepth is the deepest nesting of lists and dicts that json,
	// args and result accept.
	MaxJSONDepth = 100
	// MaxJSONBytes is the largest JSON text json.decode reads and json.encode
	// and result produce.
	MaxJSONBytes = 16 << 20
	// maxIntDigits bounds the digits of an integer json.decode parses
	// (decimal parsing of huge integers is quadratic).
	maxIntDigits = 4300
)

// jsonModule is the json module: encode(value) and decode(text).
func jsonModule(r *run) *starlarkstruct.Module {
	return module("json", map[string]func(*starlark.Thread, *starlark.Builtin, starlark.Tuple, []starlark.Tuple) (starlark.Value, error){
		"encode": r.jsonEncode,
		"decode": r.jsonDecode,
	})
}

// builtinError is an error of kind from a builtin that is not a host
// operation: it names the builtin and has no action or resource.
func builtinError(b *starlark.Builtin, kind, format string, args ...any) error {
	return &hostops.Error{Kind: kind, Message: b.Name() + ": " + fmt.Sprintf(format, args...)}
}

// json.encode(value) returns value as compact JSON text: None, bools, ints
// (within int64), finite floats, UTF-8 strings, lists, tuples, dicts with
// string keys (written sorted) and structs (their fields). Anything else
// (functions, sets, bytes, modules, …) is INVALID_ARGUMENT, and so is
// nesting deeper than MaxJSONDepth (a cycle is too deep); text longer
// than MaxJSONBytes is LIMIT_EXCEEDED.
func (r *run) jsonEncode(_ *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var v starlark.Value
	if err := starlark.UnpackPositionalArgs(b.Name(), args, kwargs, 1, &v); err != nil {
		return nil, invalidArgument(b, err)
	}
	text, err := encodeJSON(b, v)
	if err != nil {
		return nil, err
	}
	return starlark.String(text), nil
}

// json.decode(text) parses one JSON value: objects become dicts (a
// repeated key keeps its last value), arrays lists, integers ints and
// other numbers floats. The values are not frozen.
func (r *run) jsonDecode(_ *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var text string
	if err := starlark.UnpackPositionalArgs(b.Name(), args, kwargs, 1, &text); err != nil {
		return nil, invalidArgument(b, err)
	}
	return decodeJSON(r.context(), b, text)
}

// encodeJSON converts v and writes it as JSON.
func encodeJSON(b *starlark.Builtin, v starlark.Value) (string, error) {
	g, err := toGo(b, v)
	if err != nil {
		return "", err
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(g); err != nil {
		return "", builtinError(b, hostops.KindInvalidArgument, "%v", err)
	}
	if buf.Len()-1 > MaxJSONBytes {
		return "", builtinError(b, hostops.KindLimitExceeded, "value is larger than %d bytes as JSON", MaxJSONBytes)
	}
	return strings.TrimSuffix(buf.String(), "\n"), nil
}

// toGo converts a Starlark value to JSON-ready Go values (nil, bool,
// int64, float64, string, []any, map[string]any), within MaxJSONDepth and,
// roughly counted, MaxJSONBytes.
func toGo(b *starlark.Builtin, v starlark.Value) (any, error) {
	c := &converter{b: b, budget: MaxJSONBytes}
	return c.toGo(v, 0)
}

type converter struct {
	b      *starlark.Builtin
	budget int // bytes of JSON text left, counted roughly (a lower bound)
}

func (c *converter) spend(n int) error {
	c.budget -= n
	if c.budget < 0 {
		return builtinError(c.b, hostops.KindLimitExceeded, "value is larger than %d bytes as JSON", MaxJSONBytes)
	}
	return nil
}

func (c *converter) toGo(v starlark.Value, depth int) (any, error) {
	if depth > MaxJSONDepth {
		return nil, builtinError(c.b, hostops.KindInvalidArgument, "value is nested deeper than %d (or holds a cycle)", MaxJSONDepth)
	}
	switch v := v.(type) {
	case starlark.NoneType:
		return nil, c.spend(4)
	case starlark.Bool:
		return bool(v), c.spend(5)
	case starlark.Int:
		n, ok := v.Int64()
		if !ok {
			return nil, builtinError(c.b, hostops.KindInvalidArgument, "integer %s is out of the 64-bit range", v)
		}
		return n, c.spend(20)
	case starlark.Float:
		f := float64(v)
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, builtinError(c.b, hostops.KindInvalidArgument, "cannot encode %s as JSON", v)
		}
		return f, c.spend(24)
	case starlark.String:
		s := string(v)
		if !utf8.ValidString(s) {
			return nil, builtinError(c.b, hostops.KindInvalidArgument, "string is not valid UTF-8")
		}
		return s, c.spend(len(s) + 2)
	case *starlark.List, starlark.Tuple:
		return c.array(v.(starlark.Indexable), depth)
	case *starlark.Dict:
		return c.object(v.Items(), depth, "dict")
	case *starlarkstruct.Struct:
		var items []starlark.Tuple
		for _, name := range v.AttrNames() {
			x, err := v.Attr(name)
			if err != nil {
				return nil, builtinError(c.b, hostops.KindInvalidArgument, "%v", err)
			}
			items = append(items, starlark.Tuple{starlark.String(name), x})
		}
		return c.object(items, depth, "struct")
	}
	return nil, builtinError(c.b, hostops.KindInvalidArgument, "cannot encode a %s as JSON", v.Type())
}

func (c *converter) array(v starlark.Indexable, depth int) (any, error) {
	if err := c.spend(2); err != nil {
		return nil, err
	}
	out := make([]any, v.Len())
	for i := range out {
		x, err := c.toGo(v.Index(i), depth+1)
		if err != nil {
			return nil, err
		}
		out[i] = x
		if err := c.spend(1); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (c *converter) object(items []starlark.Tuple, depth int, what string) (any, error) {
	if err := c.spend(2); err != nil {
		return nil, err
	}
	out := make(map[string]any, len(items))
	for _, kv := range items {
		k, ok := kv[0].(starlark.String)
		if !ok {
			return nil, builtinError(c.b, hostops.KindInvalidArgument, "%s key %s is a %s, not a string", what, kv[0], kv[0].Type())
		}
		if !utf8.ValidString(string(k)) {
			return nil, builtinError(c.b, hostops.KindInvalidArgument, "%s key is not valid UTF-8", what)
		}
		if err := c.spend(len(k) + 4); err != nil {
			return nil, err
		}
		x, err := c.toGo(kv[1], depth+1)
		if err != nil {
			return nil, err
		}
		out[string(k)] = x
	}
	return out, nil
}

// decodeJSON parses text as one JSON value, iteratively: containers are
// kept on an explicit stack no deeper than MaxJSONDepth.
// It stops when ctx ends (the script's wall-clock limit), checking every
// few thousand tokens.
func decodeJSON(ctx context.Context, b *starlark.Builtin, text string) (starlark.Value, error) {
	if len(text) > MaxJSONBytes {
		return nil, builtinError(b, hostops.KindLimitExceeded, "text is longer than %d bytes", MaxJSONBytes)
	}
	invalid := func(format string, args ...any) (starlark.Value, error) {
		return nil, builtinError(b, hostops.KindInvalidArgument, "invalid JSON: "+format, args...)
	}
	type frame struct {
		list *starlark.List
		dict *starlark.Dict
		key  starlark.Value // the dict key awaiting its value, or nil
	}
	dec := json.NewDecoder(strings.NewReader(text))
	dec.UseNumber()
	var (
		stack []frame
		root  starlark.Value
		done  bool
	)
	// put places a finished value (or a container just opened) in its
	// parent, or makes it the root.
	put := func(v starlark.Value) error {
		if len(stack) == 0 {
			root, done = v, true
			return nil
		}
		top := &stack[len(stack)-1]
		if top.list != nil {
			return top.list.Append(v)
		}
		err := top.dict.SetKey(top.key, v)
		top.key = nil
		return err
	}
	for n := 0; !done; n++ {
		if n%4096 == 0 && ctx.Err() != nil {
			return nil, builtinError(b, hostops.KindLimitExceeded, "stopped: %v", ctx.Err())
		}
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return invalid("unexpected end of text")
		}
		if err != nil {
			return invalid("%v", err)
		}
		if len(stack) > 0 {
			if top := &stack[len(stack)-1]; top.dict != nil && top.key == nil {
				if d, ok := tok.(json.Delim); ok && d == '}' {
					stack = stack[:len(stack)-1]
					done = len(stack) == 0
					continue
				}
				k, _ := tok.(string) // the decoder allows only strings here
				top.key = starlark.String(k)
				continue
			}
		}
		var v starlark.Value
		switch t := tok.(type) {
		case json.Delim:
			switch t {
			case '[', '{':
				if len(stack) >= MaxJSONDepth {
					return invalid("nested deeper than %d", MaxJSONDepth)
				}
				f := frame{}
				if t == '[' {
					f.list = starlark.NewList(nil)
					v = f.list
				} else {
					f.dict = starlark.NewDict(0)
					v = f.dict
				}
				if len(stack) == 0 {
					root = v
				} else if err := put(v); err != nil {
					return nil, err
				}
				stack = append(stack, f)
				continue
			case ']':
				stack = stack[:len(stack)-1]
				done = len(stack) == 0
				continue
			}
		case string:
			v = starlark.String(t)
		case json.Number:
			n, err := numberValue(t)
			if err != nil {
				return invalid("%v", err)
			}
			v = n
		case bool:
			v = starlark.Bool(t)
		case nil:
			v = starlark.None
		default:
			return invalid("unexpected token %v", tok)
		}
		if err := put(v); err != nil {
			return nil, err
		}
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return invalid("data after the value")
	}
	return root, nil
}

// numberValue converts a JSON number: an int if it has no fraction or
// exponent, else a float.
func numberValue(n json.Number) (starlark.Value, error) {
	s := string(n)
	if !strings.ContainsAny(s, ".eE") {
		if i, err := strconv.ParseInt(s, 10, 64); err == nil {
			return starlark.MakeInt64(i), nil
		}
		if len(s) > maxIntDigits {
			return nil, fmt.Errorf("integer has more than %d digits", maxIntDigits)
		}
		var z big.Int
		if _, ok := z.SetString(s, 10); !ok {
			return nil, fmt.Errorf("bad integer %q", s)
		}
		return starlark.MakeBigInt(&z), nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return nil, fmt.Errorf("number %s is out of range", s)
	}
	return starlark.Float(f), nil
}

// fromGo converts a JSON-decoded Go value (nil, bool, json.Number,
// float64, int, int64, string, []any, map[string]any) to Starlark, within
// MaxJSONDepth. Dicts get their keys in sorted order.
func fromGo(v any, depth int) (starlark.Value, error) {
	if depth > MaxJSONDepth {
		return nil, fmt.Errorf("nested deeper than %d", MaxJSONDepth)
	}
	switch v := v.(type) {
	case nil:
		return starlark.None, nil
	case bool:
		return starlark.Bool(v), nil
	case json.Number:
		return numberValue(v)
	case float64:
		return starlark.Float(v), nil
	case int:
		return starlark.MakeInt(v), nil
	case int64:
		return starlark.MakeInt64(v), nil
	case string:
		return starlark.String(v), nil
	case []any:
		out := make([]starlark.Value, len(v))
		for i, x := range v {
			y, err := fromGo(x, depth+1)
			if err != nil {
				return nil, err
			}
			out[i] = y
		}
		return starlark.NewList(out), nil
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		d := starlark.NewDict(len(v))
		for _, k := range keys {
			y, err := fromGo(v[k], depth+1)
			if err != nil {
				return nil, err
			}
			if err := d.SetKey(starlark.String(k), y); err != nil {
				return nil, err
			}
		}
		return d, nil
	}
	return nil, fmt.Errorf("unsupported value of type %T", v)
}
