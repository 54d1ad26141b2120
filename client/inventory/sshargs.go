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
	opts, _, err := sshGetopt(toks)
	if err != nil {
		return "", false, err
	}
	for _, o := range opts {
		switch o.flag {
		case 'J':
			j, err := checkJump(o.arg)
			return j, true, err
		case 'o':
			key, val := splitOption(o.arg)
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

// sshOpt is one option of an ssh(1) command line; arg is "" for a flag
// without one.
type sshOpt struct {
	flag byte
	arg  string
}

// sshGetopt reads ssh(1) arguments as ssh does: flags may be bundled
// (-qJ bastion), an option's argument is glued (-pPORT) or the next word,
// options may follow the destination, and -- ends the options. It returns
// the options in order and the other words.
func sshGetopt(toks []string) (opts []sshOpt, words []string, err error) {
	for i := 0; i < len(toks); i++ {
		t := toks[i]
		if t == "--" {
			return opts, append(words, toks[i+1:]...), nil
		}
		if len(t) < 2 || t[0] != '-' {
			words = append(words, t)
			continue
		}
		for j := 1; j < len(t); j++ {
			flag := t[j]
			if !strings.ContainsRune(sshFlagsWithArg, rune(flag)) {
				opts = append(opts, sshOpt{flag: flag})
				continue
			}
			arg := t[j+1:]
			if arg == "" {
				if i+1 >= len(toks) {
					return nil, nil, fmt.Errorf("-%c needs an argument", flag)
				}
				i++
				arg = toks[i]
			}
			opts = append(opts, sshOpt{flag: flag, arg: arg})
			break
		}
	}
	return opts, words, nil
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

// checkJump checks a ProxyJump value: none (returned as "none", a
// direct connection), or a comma list of [user@]host[:port] or
// ssh://[user@]host[:port].
func checkJump(v string) (string, error) {
	if strings.EqualFold(v, "none") {
		return "none", nil
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
		return "none", nil
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
	opts, words, err := sshGetopt(toks[1:])
	if err != nil {
		return "", fmt.Errorf("ProxyCommand %q: %v", shown, err)
	}
	if len(words) != 1 {
		return "", unsupported // no bastion, or a remote command
	}
	dest := words[0]
	// As ssh, the first value given for each setting wins.
	var user, port, inner string
	first := func(p *string, v string) {
		if *p == "" {
			*p = v
		}
	}
	forward := false
	for _, o := range opts {
		switch o.flag {
		case 'W':
			if o.arg != "%h:%p" && o.arg != "[%h]:%p" {
				return "", unsupported
			}
			forward = true
		case 'p':
			first(&port, o.arg)
		case 'l':
			first(&user, o.arg)
		case 'J':
			first(&inner, o.arg)
		case 'o':
			key, val := splitOption(o.arg)
			switch strings.ToLower(key) {
			case "port":
				first(&port, val)
			case "user":
				first(&user, val)
			case "proxyjump":
				first(&inner, val)
			case "proxycommand":
				return "", unsupported
			}
		}
	}
	if !forward {
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
	if strings.EqualFold(hop, "none") {
		// As a ProxyJump, "none" would mean no bastion at all.
		return "", fmt.Errorf("a bastion named %q cannot be a jump; name it by its address", hop)
	}
	return checkJump(hop)
}
