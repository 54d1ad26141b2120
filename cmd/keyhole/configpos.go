package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/BurntSushi/toml"
)

// decodeError names the file and line of a TOML decode error, where the
// decoder knows it: "config FILE:LINE: KEY: message".
func decodeError(path string, err error) error {
	var pe toml.ParseError
	if !errors.As(err, &pe) || pe.Position.Line == 0 {
		return fmt.Errorf("config %s: %w", path, err)
	}
	if pe.LastKey != "" {
		return fmt.Errorf("config %s:%d: %s: %s", path, pe.Position.Line, pe.LastKey, pe.Message)
	}
	return fmt.Errorf("config %s:%d: %s", path, pe.Position.Line, pe.Message)
}

// keyLine returns the line of path where key is set, or 0 when it cannot
// be told (the decoder does not say where unknown keys are). It follows
// [table] headers and dotted keys; it is only used to point at a line.
func keyLine(path string, key toml.Key) int {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	want := key.String()
	table := ""
	for i, raw := range strings.Split(string(data), "\n") {
		line := strings.TrimSpace(raw)
		switch {
		case line == "" || line[0] == '#':
			continue
		case strings.HasPrefix(line, "["):
			name, _, _ := strings.Cut(strings.Trim(line, "[]"), "]")
			table = normKey(name)
			continue
		}
		k, _, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		full := normKey(k)
		if table != "" {
			full = table + "." + full
		}
		if full == want {
			return i + 1
		}
	}
	return 0
}

// normKey turns a written TOML key (`a . "b"`) into its dotted form.
func normKey(k string) string {
	parts := strings.Split(k, ".")
	for i, p := range parts {
		parts[i] = strings.Trim(strings.TrimSpace(p), `"'`)
	}
	return strings.Join(parts, ".")
}

// at is path, with ":line" when line is known.
func at(path string, line int) string {
	if line == 0 {
		return path
	}
	return fmt.Sprintf("%s:%d", path, line)
}
