package inventory

import (
	"fmt"
	"path"
	"strings"
)

// sshFlagsWithArg are ssh(1)'s options that take an argument.
const sshFlagsWithArg = "BbcDEeFIiJLlmOoPpQRSWw"

// jumpFromArgs finds the jump host in ssh arguments as Ansible passes them
// (ansible_ssh_common_args, ansible_ssh_extra_args): -J X, -o ProxyJump=X,
// or -o ProxyCommand="ssh -W %h:%p [-p port] [-l user] [user@]bastion".
// As ssh does, the first of them wins; "none" means no jump. found
// reports whether one was given.
func jumpFromArgs(args string) (jump string, found bool, err error) {
	toks, err := shellSplit(args, false)
	if err != nil {
		return "", false, err
	}
	for i := 0; i < len(toks); i++ {
		t := toks[i]
		if len(t) < 2 || t[0] != '-' || t[1] == '-' {
			continue
		}
		flag, arg := t[1], t[2:]
		if !strings.ContainsRune(sshFlagsWithArg, rune(flag)) {
			continue
		}
		if arg == "" {
			if i+1 >= len(toks) {
				return "", false, fmt.Errorf("-%c needs an argument", flag)
			}
			i++
			arg = toks[i]
		}
		switch flag {
		case 'J':
			j, err := checkJump(arg)
			return j, true, err
		case 'o':
			key, val := splitOption(arg)
			switch strings.ToLower(key) {
			case "proxyjump":
				j, err := checkJump(val)
				return j, true, err
			case "proxycommand":
				j, err := jumpFromProxyCommand(val)
				return j, true, err
			}
		}
	}
	return "", false, nil
}

// splitOption splits an ssh -o option: Key=Value or Key Value.
func splitOption(s string) (key, val string) {
	s = strings.TrimSpace(s)
	i := strings.IndexAny(s, "= \t")
	if i < 0 {
		return s, ""
	}
	return s[:i], strings.TrimLeft(s[i:], "= \t")
}

// checkJump checks a ProxyJump value: none, or a comma list of
// [user@]host[:port] or ssh://[user@]host[:port].
func checkJump(v string) (string, error) {
	if strings.EqualFold(v, "none") {
		return "", nil
	}
	if v == "" {
		return "", fmt.Errorf("empty ProxyJump")
	}
	for _, hop := range strings.Split(v, ",") {
		h := strings.TrimPrefix(hop, "ssh://")
		if strings.Contains(h, "%") {
			return "", fmt.Errorf("jump host %q holds a %% token; tokens are not expanded, write the host itself", hop)
		}
		t, err := parseHostToken(h, true)
		if err == nil && strings.ContainsAny(t.pattern, "[]/") {
			err = fmt.Errorf("%q is not a host", t.pattern)
		}
		if err == nil {
			err = checkName(t.pattern)
		}
		if err == nil && (strings.HasPrefix(t.pattern, "-") || strings.HasPrefix(t.user, "-")) {
			err = fmt.Errorf("starts with '-'")
		}
		if err != nil {
			return "", fmt.Errorf("jump host %q: %v", hop, err)
		}
	}
	return v, nil
}

// jumpFromProxyCommand turns a ProxyCommand that runs ssh -W %h:%p
// through a bastion into that bastion as a jump. Any other proxy command
// is an error: dialing directly instead would bypass the route the
// inventory asks for.
func jumpFromProxyCommand(cmd string) (string, error) {
	if strings.EqualFold(strings.TrimSpace(cmd), "none") {
		return "", nil
	}
	// Errors show only the command's program: the rest may hold a
	// password (sshpass -p …).
	words := strings.Fields(cmd)
	if len(words) == 0 {
		return "", fmt.Errorf("empty ProxyCommand")
	}
	shown := words[0]
	if len(words) > 1 {
		shown += " …"
	}
	unsupported := fmt.Errorf("ProxyCommand %q is not supported: only ssh -W %%h:%%p [-p PORT] [-l USER] [USER@]BASTION is read as a jump; write -o ProxyJump=USER@BASTION instead", shown)
	toks, err := shellSplit(cmd, false)
	if err != nil {
		return "", fmt.Errorf("ProxyCommand %q: %v", shown, err)
	}
	if len(toks) == 0 || path.Base(toks[0]) != "ssh" {
		return "", unsupported
	}
	var user, port, dest, inner string
	forward := false
	for i := 1; i < len(toks); i++ {
		t := toks[i]
		if dest != "" {
			return "", unsupported // a remote command, not -W
		}
		if len(t) < 2 || t[0] != '-' {
			dest = t
			continue
		}
		flag, arg := t[1], t[2:]
		if !strings.ContainsRune(sshFlagsWithArg, rune(flag)) {
			continue
		}
		if arg == "" {
			if i+1 >= len(toks) {
				return "", fmt.Errorf("ProxyCommand %q: -%c needs an argument", shown, flag)
			}
			i++
			arg = toks[i]
		}
		switch flag {
		case 'W':
			if arg != "%h:%p" && arg != "[%h]:%p" {
				return "", unsupported
			}
			forward = true
		case 'p':
			port = arg
		case 'l':
			user = arg
		case 'J':
			inner = arg
		case 'o':
			key, val := splitOption(arg)
			switch strings.ToLower(key) {
			case "port":
				port = val
			case "user":
				user = val
			case "proxyjump":
				inner = val
			case "proxycommand":
				return "", unsupported
			}
		}
	}
	if !forward || dest == "" {
		return "", unsupported
	}
	dest = strings.TrimPrefix(dest, "ssh://")
	t, err := parseHostToken(dest, true)
	if err != nil {
		return "", fmt.Errorf("ProxyCommand %q: bastion: %v", shown, err)
	}
	if user == "" {
		user = t.user // as in ssh, an earlier -l wins over user@
	}
	if t.portStr != "" && port == "" {
		port = t.portStr
	}
	hop := t.pattern
	if isIPv6(hop) && port != "" {
		hop = "[" + hop + "]"
	}
	if user != "" {
		hop = user + "@" + hop
	}
	if port != "" {
		hop += ":" + port
	}
	if inner != "" && !strings.EqualFold(inner, "none") {
		hop = inner + "," + hop
	}
	return checkJump(hop)
}
