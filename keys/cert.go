package keys

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
)

// RefusedError is an authentication refusal with a reason fit for the audit
// log. Reason is one of a fixed set of short phrases, optionally followed by
// detail that never holds key material.
type RefusedError struct {
	Reason string
	Detail string
}

func (e *RefusedError) Error() string {
	if e.Detail == "" {
		return "keys: " + e.Reason
	}
	return "keys: " + e.Reason + ": " + e.Detail
}

// Is reports whether target is a RefusedError with the same Reason, so that
// errors.Is(err, errCertExpired) works whatever the detail.
func (e *RefusedError) Is(target error) bool {
	t, ok := target.(*RefusedError)
	return ok && t.Reason == e.Reason
}

func refused(base *RefusedError, format string, a ...any) error {
	return &RefusedError{Reason: base.Reason, Detail: fmt.Sprintf(format, a...)}
}

// Named refusals. Tests and audit lines speak of these.
var (
	ErrNotCertificate      = &RefusedError{Reason: "not a certificate"}
	ErrHostCertificate     = &RefusedError{Reason: "host certificate offered as user certificate"}
	ErrUnknownCA           = &RefusedError{Reason: "unknown CA"}
	ErrSHA1Signature       = &RefusedError{Reason: "CA signature uses ssh-rsa (SHA-1)"}
	ErrBadSignature        = &RefusedError{Reason: "bad certificate signature"}
	ErrNoPrincipals        = &RefusedError{Reason: "certificate has no principals"}
	ErrPrincipalNotAllowed = &RefusedError{Reason: "principal not allowed"}
	ErrCertExpired         = &RefusedError{Reason: "expired"}
	ErrCertNotYetValid     = &RefusedError{Reason: "not yet valid"}
	ErrCriticalOption      = &RefusedError{Reason: "unsupported critical option"}
	ErrSourceAddress       = &RefusedError{Reason: "source address not allowed"}
	ErrNoKeyID             = &RefusedError{Reason: "certificate has no key id"}
)

// Identity is who a verified key speaks for.
type Identity struct {
	UserID      string   // certificate key id, or the keys_file line's comment
	Role        string   // the login name, one of Principals
	Principals  []string // every principal the certificate or key line lists
	Serial      uint64   // certificate serial, 0 for plain keys
	Fingerprint string   // SHA256 fingerprint of the user key (not of the CA), as OpenSSH prints it
	Auth        string   // "certificate" or "key"
}

// TrustedCAs is a set of user CA public keys, as in OpenSSH's
// TrustedUserCAKeys.
type TrustedCAs struct {
	keys [][]byte // wire encodings
}

// LoadTrustedCAs reads a file with one CA public key a line (authorized_keys
// format; blank lines and # comments are skipped).
func LoadTrustedCAs(path string) (*TrustedCAs, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("keys: read trusted CA keys: %w", err)
	}
	cas, err := ParseTrustedCAs(data)
	if err != nil {
		return nil, fmt.Errorf("keys: %s: %w", path, err)
	}
	return cas, nil
}

// ParseTrustedCAs parses the contents of a trusted CA keys file.
func ParseTrustedCAs(data []byte) (*TrustedCAs, error) {
	cas := &TrustedCAs{}
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		key, _, _, _, err := ssh.ParseAuthorizedKey([]byte(line))
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", i+1, err)
		}
		if _, ok := key.(*ssh.Certificate); ok {
			return nil, fmt.Errorf("line %d: a certificate cannot be a CA key", i+1)
		}
		cas.keys = append(cas.keys, key.Marshal())
	}
	if len(cas.keys) == 0 {
		return nil, errors.New("no CA keys")
	}
	return cas, nil
}

// Trusts reports whether key is one of the CA keys.
func (c *TrustedCAs) Trusts(key ssh.PublicKey) bool {
	b := key.Marshal()
	return slices.ContainsFunc(c.keys, func(k []byte) bool { return bytes.Equal(k, b) })
}

// CertRules checks user certificates against a set of trusted CAs.
type CertRules struct {
	CAs   *TrustedCAs
	Clock func() time.Time // nil means time.Now
}

// Check decides whether key may log in as login from source. On success it
// returns the identity the key speaks for; otherwise a *RefusedError.
func (r *CertRules) Check(key ssh.PublicKey, login string, source net.Addr) (*Identity, error) {
	cert, ok := key.(*ssh.Certificate)
	if !ok {
		return nil, ErrNotCertificate
	}
	if cert.CertType != ssh.UserCert {
		return nil, ErrHostCertificate
	}
	if r.CAs == nil || !r.CAs.Trusts(cert.SignatureKey) {
		return nil, refused(ErrUnknownCA, "%s", ssh.FingerprintSHA256(cert.SignatureKey))
	}
	if cert.Signature == nil || cert.Signature.Format == ssh.KeyAlgoRSA {
		return nil, ErrSHA1Signature
	}
	if len(cert.ValidPrincipals) == 0 {
		return nil, ErrNoPrincipals
	}
	if cert.KeyId == "" {
		return nil, ErrNoKeyID
	}
	if !slices.Contains(cert.ValidPrincipals, login) {
		return nil, refused(ErrPrincipalNotAllowed, "%q not in certificate principals", login)
	}
	now := time.Now()
	if r.Clock != nil {
		now = r.Clock()
	}
	unix := now.Unix()
	if unix < 0 || uint64(unix) < cert.ValidAfter {
		return nil, refused(ErrCertNotYetValid, "valid after %s", certTime(cert.ValidAfter))
	}
	if cert.ValidBefore != ssh.CertTimeInfinity && uint64(unix) >= cert.ValidBefore {
		return nil, refused(ErrCertExpired, "valid before %s", certTime(cert.ValidBefore))
	}
	for opt, val := range cert.CriticalOptions {
		if opt != "source-address" {
			return nil, refused(ErrCriticalOption, "%q", opt)
		}
		if err := checkSourceAddress(val, source); err != nil {
			return nil, err
		}
	}
	checker := &ssh.CertChecker{
		SupportedCriticalOptions: []string{"source-address"},
		Clock:                    func() time.Time { return now },
	}
	if err := checker.CheckCert(login, cert); err != nil {
		return nil, refused(ErrBadSignature, "%v", err)
	}
	return &Identity{
		UserID:      cert.KeyId,
		Role:        login,
		Principals:  slices.Clone(cert.ValidPrincipals),
		Serial:      cert.Serial,
		Fingerprint: ssh.FingerprintSHA256(cert.Key),
		Auth:        "certificate",
	}, nil
}

func certTime(t uint64) string {
	if t > 1<<62 {
		return "forever"
	}
	return time.Unix(int64(t), 0).UTC().Format(time.RFC3339)
}

// checkSourceAddress enforces a source-address option: a comma-separated
// list of addresses and CIDR blocks. A source that is not an IP address never
// matches, as in OpenSSH.
func checkSourceAddress(list string, source net.Addr) error {
	var ip netip.Addr
	if tcp, ok := source.(*net.TCPAddr); ok {
		ip, _ = netip.AddrFromSlice(tcp.IP)
		ip = ip.Unmap()
	}
	for _, item := range strings.Split(list, ",") {
		item = strings.TrimSpace(item)
		var prefix netip.Prefix
		var err error
		if strings.Contains(item, "/") {
			prefix, err = netip.ParsePrefix(item)
		} else {
			var a netip.Addr
			a, err = netip.ParseAddr(item)
			if err == nil {
				prefix = netip.PrefixFrom(a, a.BitLen())
			}
		}
		if err != nil {
			return refused(ErrSourceAddress, "malformed source-address %q", item)
		}
		if ip.IsValid() && prefix.Masked().Contains(ip) {
			return nil
		}
	}
	return refused(ErrSourceAddress, "%s not in %q", ip, list)
}
