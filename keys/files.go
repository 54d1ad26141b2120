package keys

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/crypto/ssh"
)

// GenerateKey makes a new ed25519 key pair and returns its signer and the
// private key.
func GenerateKey() (ssh.Signer, ed25519.PrivateKey, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("keys: generate: %w", err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		return nil, nil, fmt.Errorf("keys: signer: %w", err)
	}
	return s, priv, nil
}

// WriteKeyPair writes priv in OpenSSH format to path (mode 0600, refusing to
// overwrite) and its public key to path+".pub" (mode 0644).
func WriteKeyPair(path string, priv ed25519.PrivateKey, comment string) error {
	block, err := ssh.MarshalPrivateKey(priv, comment)
	if err != nil {
		return fmt.Errorf("keys: marshal %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("keys: write %s: %w", path, err)
	}
	if err := pem.Encode(f, block); err != nil {
		f.Close()
		return fmt.Errorf("keys: write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("keys: write %s: %w", path, err)
	}
	pub, err := ssh.NewPublicKey(priv.Public())
	if err != nil {
		return fmt.Errorf("keys: public key: %w", err)
	}
	line := ssh.MarshalAuthorizedKey(pub)
	if comment != "" {
		line = append(line[:len(line)-1], []byte(" "+comment+"\n")...)
	}
	if err := os.WriteFile(path+".pub", line, 0o644); err != nil {
		return fmt.Errorf("keys: write %s.pub: %w", path, err)
	}
	return nil
}

// LoadSigner reads an unencrypted OpenSSH private key.
func LoadSigner(path string) (ssh.Signer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("keys: read %s: %w", path, err)
	}
	s, err := ssh.ParsePrivateKey(data)
	if err != nil {
		return nil, fmt.Errorf("keys: parse %s: %w", path, err)
	}
	return s, nil
}

// LoadOrCreateHostKey loads the host key at path, creating an ed25519 key
// (mode 0600) when the file does not exist.
func LoadOrCreateHostKey(path string) (ssh.Signer, error) {
	s, err := LoadSigner(path)
	if err == nil {
		return s, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("keys: host key dir: %w", err)
	}
	_, priv, err := GenerateKey()
	if err != nil {
		return nil, err
	}
	if err := WriteKeyPair(path, priv, "keyhole host key"); err != nil {
		return nil, err
	}
	return LoadSigner(path)
}

// CertRequest describes a user certificate to sign.
type CertRequest struct {
	Key        ssh.PublicKey
	KeyID      string
	Principals []string
	Serial     uint64
	// ValidAfter is the start of validity; zero means a minute ago, and
	// then the certificate ends Validity from now, not from that start.
	ValidAfter time.Time
	Validity   time.Duration
	// CriticalOptions, such as "source-address"; nil for none.
	CriticalOptions map[string]string
}

// SignUserCert signs a user certificate with ca, using a SHA-2 signature.
func SignUserCert(ca ssh.Signer, req CertRequest) (*ssh.Certificate, error) {
	if len(req.Principals) == 0 {
		return nil, errors.New("keys: sign: no principals")
	}
	return signCert(ca, req, ssh.UserCert, ssh.Permissions{
		CriticalOptions: req.CriticalOptions,
		Extensions:      map[string]string{},
	})
}

// signCert checks what every certificate needs, builds it from req and
// signs it with ca, with rsa-sha2-512 when ca is an RSA key (never ssh-rsa).
func signCert(ca ssh.Signer, req CertRequest, certType uint32, perms ssh.Permissions) (*ssh.Certificate, error) {
	if req.KeyID == "" {
		return nil, errors.New("keys: sign: empty key id")
	}
	if req.Validity <= 0 {
		return nil, errors.New("keys: sign: validity must be positive")
	}
	// Without a start, the certificate is valid from a minute ago (for
	// clocks slightly behind) until now + Validity, the full span asked.
	after := req.ValidAfter
	before := after.Add(req.Validity)
	if after.IsZero() {
		now := time.Now()
		after, before = now.Add(-time.Minute), now.Add(req.Validity)
	}
	cert := &ssh.Certificate{
		Key:             req.Key,
		Serial:          req.Serial,
		CertType:        certType,
		KeyId:           req.KeyID,
		ValidPrincipals: req.Principals,
		ValidAfter:      uint64(after.Unix()),
		ValidBefore:     uint64(before.Unix()),
		Permissions:     perms,
	}
	signer := ca
	if as, ok := ca.(ssh.AlgorithmSigner); ok && ca.PublicKey().Type() == ssh.KeyAlgoRSA {
		s, err := ssh.NewSignerWithAlgorithms(as, []string{ssh.KeyAlgoRSASHA512})
		if err != nil {
			return nil, fmt.Errorf("keys: sign: %w", err)
		}
		signer = s
	}
	if err := cert.SignCert(rand.Reader, signer); err != nil {
		return nil, fmt.Errorf("keys: sign: %w", err)
	}
	return cert, nil
}
