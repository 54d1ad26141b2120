package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/rogpeppe/go-internal/testscript"
)

// mcpcall TOOL ARGS-JSON -- MCP-FLAGS... starts "keyhole mcp MCP-FLAGS"
// as an MCP client would (a command on stdio), calls TOOL with the
// arguments and prints "isError: BOOL" and the text content (the
// structured content's JSON, checked to be the same) on stdout. TOOL "tools/list" prints a
// line per tool: its name and annotations; "resources/read" reads the
// resource whose URI is ARGS-JSON and prints its text. ARGS-JSON
// "@FILE" reads the arguments from FILE.
func cmdMCPCall(ts *testscript.TestScript, neg bool, args []string) {
	i := slices.Index(args, "--")
	if neg || i != 2 {
		ts.Fatalf("usage: mcpcall TOOL ARGS-JSON -- MCP-FLAGS...")
	}
	tool, argJSON, flags := args[0], args[1], args[i+1:]
	cmd := exec.Command("keyhole", append([]string{"mcp"}, flags...)...)
	cmd.Dir = ts.Getenv("WORK")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + ts.Getenv("HOME"), "SSH_AUTH_SOCK="}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := mcp.NewClient(&mcp.Implementation{Name: "mcpcall", Version: "1"}, nil)
	cs, err := c.Connect(ctx, &mcp.CommandTransport{Command: cmd, TerminateDuration: 5 * time.Second}, nil)
	if err != nil {
		ts.Fatalf("connect: %v (stderr: %s)", err, stderr.String())
	}
	defer func() {
		cs.Close()
		if stderr.Len() > 0 {
			fmt.Fprint(ts.Stderr(), stderr.String())
		}
	}()
	out := ts.Stdout()
	switch tool {
	case "tools/list":
		res, err := cs.ListTools(ctx, nil)
		ts.Check(err)
		for _, t := range res.Tools {
			a := t.Annotations
			fmt.Fprintf(out, "%s readOnly=%v destructive=%v idempotent=%v openWorld=%v\n", t.Name, a.ReadOnlyHint,
				a.DestructiveHint != nil && *a.DestructiveHint, a.IdempotentHint, a.OpenWorldHint == nil || *a.OpenWorldHint)
		}
		return
	case "resources/read":
		res, err := cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: argJSON})
		ts.Check(err)
		fmt.Fprint(out, res.Contents[0].Text)
		return
	}
	if name, ok := strings.CutPrefix(argJSON, "@"); ok {
		b, err := os.ReadFile(ts.MkAbs(name))
		ts.Check(err)
		argJSON = string(b)
	}
	var arguments map[string]any
	if err := json.Unmarshal([]byte(argJSON), &arguments); err != nil {
		ts.Fatalf("arguments: %v", err)
	}
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: tool, Arguments: arguments})
	if err != nil {
		ts.Fatalf("call %s: %v", tool, err)
	}
	fmt.Fprintf(out, "isError: %v\n", res.IsError)
	var text strings.Builder
	for _, c := range res.Content {
		if tc, ok := c.(*mcp.TextContent); ok {
			text.WriteString(tc.Text)
		}
	}
	fmt.Fprintln(out, text.String())
	// The text is the structured content's JSON, for clients that read
	// only text.
	if res.StructuredContent != nil {
		var fromText any
		ts.Check(json.Unmarshal([]byte(text.String()), &fromText))
		a, _ := json.Marshal(fromText)
		b, _ := json.Marshal(res.StructuredContent)
		if string(a) != string(b) {
			ts.Fatalf("text %s, structured content %s", a, b)
		}
	}
}
