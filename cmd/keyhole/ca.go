package main

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	"unicode"

	gossh "golang.org/x/crypto/ssh"

	"github.com/keyhole-dev/keyhole/keys"
)

const caUsage = `usage: keyhole ca <command> [flags]

commands:
  init DIR      make an ed25519 CA key pair: DIR/ca (0600) and DIR/ca.pub
  sign          sign a user (or, with --host, host) certificate
  revoke        add serials, key ids or keys to an OpenSSH KRL, or create an empty one

run "keyhole ca <command> --help" for a command's flags
`

// cmdCA runs "keyhole ca …". What a person needs to see goes to stderr;
// only the usage that --help asks for is printed to stdout.
func cmdCA(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, caUsage)
		return &usageError{"ca needs a command: init, sign or revoke"}
	}
	switch args[0] {
	case "init":
		return inCommand("ca init", caInit(args[1:], stdout, stderr))
	case "sign":
		return inCommand("ca sign", caSign(args[1:], stdout, stderr))
	case "revoke":
		return inCommand("ca revoke", caRevoke(args[1:], stdout, stderr))
	case "help", "-h", "--help":
		fmt.Fprint(stdout, caUsage)
		return nil
	}
	return &usageError{fmt.Sprintf("unknown ca command %q", args[0])}
}

func caInit(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("ca init", "ca init DIR", stdout)
	// DIR is positional: parse flags first, then take it.
	if err := parseOnly(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return &usageError{"ca init needs exactly one directory"}
	}
	dir := fs.Arg(0)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("ca init: %w", err)
	}
	key := filepath.Join(dir, "ca")
	for _, p := range []string{key, key + ".pub"} {
		if _, err := os.Lstat(p); err == nil {
			return &hinted{fmt.Errorf("ca init: %s already exists", p), "a CA key is never overwritten; choose another directory"}
		}
	}
	_, priv, err := keys.GenerateKey()
	if err != nil {
		return err
	}
	if err := keys.WriteKeyPair(key, priv, "keyhole user CA"); err != nil {
		return fmt.Errorf("ca init: %w", err)
	}
	fmt.Fprintf(stderr, "keyhole: wrote %s (private, 0600) and %s\n", key, key+".pub")
	fmt.Fprintf(stderr, "keyhole: hint: set trusted_user_ca_keys = %q in the server config\n", key+".pub")
	return nil
}

func caSign(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("ca sign", "ca sign --ca KEY --key ID.pub --id ID --principals A,B --validity 8h [--source-address CIDR,…] [--serial N] [--host]", stdout)
	caPath := fs.String("ca", "", "CA private key `file` (required)")
	keyPath := fs.String("key", "", "public key `file` to certify (required); the certificate is written beside it as NAME-cert.pub")
	id := fs.String("id", "", "key `id`: the user id (required)")
	principals := fs.String("principals", "", "comma-separated `roles` (login names), or host names with --host (required)")
	validity := fs.String("validity", "", "how long from now the certificate is valid, a Go `duration` such as 8h (required; it is valid from a minute ago, for clock skew)")
	source := fs.String("source-address", "", "comma-separated addresses and `CIDR` blocks the certificate may be used from")
	serialFlag := fs.String("serial", "", "serial `number` (default: random, printed)")
	host := fs.Bool("host", false, "sign a host certificate (for a @cert-authority known_hosts line)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	var missing []string
	for _, f := range []struct{ name, v string }{
		{"--ca", *caPath}, {"--key", *keyPath}, {"--id", *id}, {"--principals", *principals}, {"--validity", *validity},
	} {
		if f.v == "" {
			missing = append(missing, f.name)
		}
	}
	if len(missing) > 0 {
		return &usageError{"ca sign needs " + strings.Join(missing, ", ")}
	}
	if err := checkText("--id", *id); err != nil {
		return err
	}
	var roles []string
	for _, p := range strings.Split(*principals, ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			return &usageError{fmt.Sprintf("--principals %q has an empty entry", *principals)}
		}
		if err := checkText("--principals", p); err != nil {
			return err
		}
		roles = append(roles, p)
	}
	d, err := time.ParseDuration(*validity)
	if err != nil || d <= 0 {
		return &usageError{fmt.Sprintf("--validity %q is not a positive duration (e.g. \"8h\", \"30m\")", *validity)}
	}
	var opts map[string]string
	if *source != "" {
		if *host {
			return &usageError{"--source-address applies to user certificates only"}
		}
		if err := checkCIDRList(*source); err != nil {
			return err
		}
		opts = map[string]string{"source-address": *source}
	}
	serial, err := parseSerial(*serialFlag)
	if err != nil {
		return err
	}
	ca, err := keys.LoadSigner(*caPath)
	if err != nil {
		return err
	}
	pub, err := readPublicKey(*keyPath)
	if err != nil {
		return err
	}
	if _, ok := pub.(*gossh.Certificate); ok {
		return fmt.Errorf("ca sign: %s is a certificate; give the plain public key", *keyPath)
	}
	req := keys.CertRequest{Key: pub, KeyID: *id, Principals: roles, Serial: serial, Validity: d, CriticalOptions: opts}
	sign := keys.SignUserCert
	if *host {
		sign = keys.SignHostCert
	}
	cert, err := sign(ca, req)
	if err != nil {
		return err
	}
	out := strings.TrimSuffix(*keyPath, ".pub") + "-cert.pub"
	line := gossh.MarshalAuthorizedKey(cert)
	line = append(line[:len(line)-1], []byte(" "+*id+"\n")...)
	if err := writeFileAtomic(out, line, 0o644); err != nil {
		return fmt.Errorf("ca sign: %w", err)
	}
	kind := "user"
	if *host {
		kind = "host"
	}
	fmt.Fprintf(stderr, "keyhole: wrote %s: %s certificate %q serial %d for %s, valid until %s\n",
		out, kind, *id, serial, strings.Join(roles, ","), time.Unix(int64(cert.ValidBefore), 0).UTC().Format(time.RFC3339))
	return nil
}

func caRevoke(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("ca revoke", "ca revoke --krl FILE ([--ca CA.pub] (--serial N[-M] | --id ID | --key K.pub)… | --empty)", stdout)
	krlPath := fs.String("krl", "", "KRL `file` to create or extend (required)")
	caPath := fs.String("ca", "", "CA public (or private) key `file` whose certificates --serial and --id revoke")
	serialFlag := fs.String("serial", "", "revoke the certificate with serial `N` (or the range N-M) issued by --ca")
	idFlag := fs.String("id", "", "revoke every certificate with key `id` issued by --ca (by any CA without --ca)")
	keyFlag := fs.String("key", "", "revoke the key in `file` (a plain key, or the key a certificate certifies)")
	empty := fs.Bool("empty", false, "create a KRL that revokes nothing yet, for revoked_keys (refused if FILE exists)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *krlPath == "" {
		return &usageError{"ca revoke needs --krl FILE"}
	}
	if *empty {
		if *serialFlag != "" || *idFlag != "" || *keyFlag != "" || *caPath != "" {
			return &usageError{"--empty takes no --ca, --serial, --id or --key"}
		}
		return createEmptyKRL(*krlPath, stderr)
	}
	if *serialFlag == "" && *idFlag == "" && *keyFlag == "" {
		return &hinted{&usageError{"ca revoke needs --serial, --id or --key"},
			"to create a KRL that revokes nothing yet, run \"keyhole ca revoke --krl " + *krlPath + " --empty\""}
	}
	if *serialFlag != "" && *caPath == "" {
		return &usageError{"--serial needs --ca: serials are only unique per CA"}
	}
	var ca gossh.PublicKey
	if *caPath != "" {
		var err error
		if ca, err = readCAPublicKey(*caPath); err != nil {
			return err
		}
	}
	krl := keys.NewKRL()
	data, err := os.ReadFile(*krlPath)
	switch {
	case err == nil:
		if krl, err = keys.ParseKRL(data); err != nil {
			return &hinted{fmt.Errorf("ca revoke: %s: %w", *krlPath, err), "the file was left as it is"}
		}
	case errors.Is(err, os.ErrNotExist):
	default:
		return fmt.Errorf("ca revoke: %w", err)
	}
	var did []string
	if *serialFlag != "" {
		lo, hi, err := parseSerialRange(*serialFlag)
		if err != nil {
			return err
		}
		if err := krl.RevokeSerials(ca, lo, hi); err != nil {
			return err
		}
		did = append(did, "serial "+*serialFlag)
	}
	if *idFlag != "" {
		if err := checkText("--id", *idFlag); err != nil {
			return err
		}
		if err := krl.RevokeKeyID(ca, *idFlag); err != nil {
			return err
		}
		did = append(did, fmt.Sprintf("key id %q", *idFlag))
	}
	if *keyFlag != "" {
		k, err := readPublicKey(*keyFlag)
		if err != nil {
			return err
		}
		krl.RevokeKey(k)
		if c, ok := k.(*gossh.Certificate); ok {
			k = c.Key
		}
		did = append(did, "key "+gossh.FingerprintSHA256(k))
	}
	krl.Version++
	krl.Generated = time.Now()
	if err := writeFileAtomic(*krlPath, krl.Marshal(), 0o644); err != nil {
		return fmt.Errorf("ca revoke: %w", err)
	}
	fmt.Fprintf(stderr, "keyhole: revoked %s in %s (KRL version %d)\n", strings.Join(did, ", "), *krlPath, krl.Version)
	return nil
}

// createEmptyKRL writes a KRL that revokes nothing at path. An existing
// file is never replaced: it may hold revocations.
func createEmptyKRL(path string, stderr io.Writer) error {
	if _, err := os.Lstat(path); err == nil {
		return &hinted{fmt.Errorf("ca revoke: %s already exists", path), "an existing KRL is never emptied; the file was left as it is"}
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("ca revoke: %w", err)
	}
	krl := keys.NewKRL()
	krl.Version = 1
	krl.Generated = time.Now()
	if err := writeFileAtomic(path, krl.Marshal(), 0o644); err != nil {
		return fmt.Errorf("ca revoke: %w", err)
	}
	fmt.Fprintf(stderr, "keyhole: wrote %s: a KRL that revokes nothing (KRL version 1)\n", path)
	return nil
}

// checkText refuses empty values and control characters, which would
// corrupt certificate listings and audit lines.
func checkText(flagName, v string) error {
	if v == "" {
		return &usageError{flagName + " must not be empty"}
	}
	for _, r := range v {
		if unicode.IsControl(r) {
			return &usageError{fmt.Sprintf("%s %q holds a control character", flagName, v)}
		}
	}
	return nil
}

func checkCIDRList(list string) error {
	for _, item := range strings.Split(list, ",") {
		item = strings.TrimSpace(item)
		var err error
		if strings.Contains(item, "/") {
			_, err = netip.ParsePrefix(item)
		} else {
			_, err = netip.ParseAddr(item)
		}
		if err != nil {
			return &usageError{fmt.Sprintf("--source-address: %q is not an address or CIDR block", item)}
		}
	}
	return nil
}

// parseSerial parses --serial, or picks a random non-zero 63-bit serial.
func parseSerial(s string) (uint64, error) {
	if s == "" {
		var b [8]byte
		if _, err := rand.Read(b[:]); err != nil {
			return 0, fmt.Errorf("ca sign: random serial: %w", err)
		}
		return binary.BigEndian.Uint64(b[:])>>1 | 1, nil
	}
	n, err := strconv.ParseUint(s, 0, 64)
	if err != nil {
		return 0, &usageError{fmt.Sprintf("--serial %q is not a number", s)}
	}
	return n, nil
}

func parseSerialRange(s string) (lo, hi uint64, err error) {
	a, b, isRange := strings.Cut(s, "-")
	lo, err1 := strconv.ParseUint(a, 0, 64)
	hi, err2 := lo, error(nil)
	if isRange {
		hi, err2 = strconv.ParseUint(b, 0, 64)
	}
	if err1 != nil || err2 != nil || lo == 0 || hi < lo {
		return 0, 0, &usageError{fmt.Sprintf("--serial %q is not a serial N or range N-M (serials start at 1)", s)}
	}
	return lo, hi, nil
}

// readPublicKey reads the first key of an authorized_keys-format file.
func readPublicKey(path string) (gossh.PublicKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read key: %w", err)
	}
	k, _, _, _, err := gossh.ParseAuthorizedKey(data)
	if err != nil {
		return nil, fmt.Errorf("%s: not a public key: %w", path, err)
	}
	return k, nil
}

// readCAPublicKey accepts a CA public key file, or its private key.
func readCAPublicKey(path string) (gossh.PublicKey, error) {
	if k, err := readPublicKey(path); err == nil {
		return k, nil
	}
	s, err := keys.LoadSigner(path)
	if err != nil {
		return nil, fmt.Errorf("--ca %s: neither a public nor a private key", path)
	}
	return s.PublicKey(), nil
}

// writeFileAtomic writes data to a temporary file beside path, syncs it
// and renames it over path, so readers see the old or the new file whole.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if _, err := f.Write(data); err != nil {
		return err
	}
	if err := f.Chmod(mode); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	ok = true
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}
