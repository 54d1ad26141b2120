package client

// Identities, found as OpenSSH finds them: the private keys named with
// -i (or, with none named, the default ones that exist), each with the
// certificate beside it (<key>-cert.pub), and the keys and certificates
// held by the ssh-agent at SSH_AUTH_SOCK.

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

// DefaultIdentities returns the private keys OpenSSH tries when none is
// named, in its order: ~/.ssh/id_ed25519, ~/.ssh/id_ecdsa, ~/.ssh/id_rsa.
func DefaultIdentities() []string {
	home, err := os.UserHomeDir()
	if err != nil {
		return nil
	}
	var out []string
	for _, n := range []string{"id_ed25519", "id_ecdsa", "id_rsa"} {
		out = append(out, filepath.Join(home, ".ssh", n))
	}
	return out
}

// identities is what a Dialer authenticates with: the signers in the
// order they are offered, and the agent connection they may sign through.
type identities struct {
	signers   []ssh.Signer
	agentConn net.Conn
}

func (id *identities) close() {
	if id.agentConn != nil {
		id.agentConn.Close()
	}
}

// loadIdentities loads the named keys (each must load), or the default
// ones that exist when none is named, then the agent's keys. An encrypted
// key file is skipped when the agent holds its key (the agent signs for
// it), and so is an encrypted default identity; a named one the agent
// does not hold is an error, as keyhole never asks for a passphrase.
func loadIdentities(files []string, agentSock string, useAgent bool) (*identities, error) {
	id := &identities{}
	var agentSigners []ssh.Signer
	if useAgent && agentSock != "" {
		conn, err := net.Dial("unix", agentSock)
		if err != nil {
			return nil, fmt.Errorf("client: ssh-agent at %s: %w", agentSock, err)
		}
		id.agentConn = conn
		agentSigners, err = agent.NewClient(conn).Signers()
		if err != nil {
			conn.Close()
			return nil, fmt.Errorf("client: ssh-agent at %s: list keys: %w", agentSock, err)
		}
	}
	named := len(files) > 0
	if !named {
		files = DefaultIdentities()
	}
	var fileSigners []ssh.Signer
	for _, f := range files {
		ss, err := loadKeyFile(f)
		switch {
		case err == nil:
			fileSigners = append(fileSigners, ss...)
		case !named && errors.Is(err, os.ErrNotExist):
			// a default identity that is not there
		case errors.As(err, new(*ssh.PassphraseMissingError)) && (!named || agentHolds(agentSigners, f)):
			// the agent signs for it, or a default identity keyhole cannot
			// open without asking for its passphrase (it never asks)
		default:
			id.close()
			return nil, err
		}
	}
	// Named keys first, then the agent's, as they are the ones asked for.
	seen := map[string]bool{}
	for _, s := range append(fileSigners, agentSigners...) {
		k := string(s.PublicKey().Marshal())
		if !seen[k] {
			seen[k] = true
			id.signers = append(id.signers, s)
		}
	}
	if len(id.signers) == 0 {
		id.close()
		return nil, errors.New("client: no identity: no key named with -i, none of ~/.ssh/id_ed25519, id_ecdsa, id_rsa, and no key in an ssh-agent")
	}
	return id, nil
}

// loadKeyFile loads the private key at path: the certificate beside it
// (<path>-cert.pub) first when there is one, then the plain key.
func loadKeyFile(path string) ([]ssh.Signer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("client: identity %s: %w", path, err)
	}
	s, err := ssh.ParsePrivateKey(data)
	if err != nil {
		var pm *ssh.PassphraseMissingError
		if errors.As(err, &pm) {
			return nil, fmt.Errorf("client: identity %s is encrypted: add it to ssh-agent (ssh-add %s): %w", path, path, err)
		}
		return nil, fmt.Errorf("client: identity %s: %w", path, err)
	}
	certPath := path + "-cert.pub"
	cdata, err := os.ReadFile(certPath)
	if errors.Is(err, os.ErrNotExist) {
		return []ssh.Signer{s}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("client: certificate %s: %w", certPath, err)
	}
	pub, _, _, _, err := ssh.ParseAuthorizedKey(cdata)
	if err != nil {
		return nil, fmt.Errorf("client: certificate %s: %w", certPath, err)
	}
	cert, ok := pub.(*ssh.Certificate)
	if !ok {
		return nil, fmt.Errorf("client: certificate %s: not a certificate", certPath)
	}
	if !bytes.Equal(cert.Key.Marshal(), s.PublicKey().Marshal()) {
		return nil, fmt.Errorf("client: certificate %s: certifies another key than %s", certPath, path)
	}
	cs, err := ssh.NewCertSigner(cert, s)
	if err != nil {
		return nil, fmt.Errorf("client: certificate %s: %w", certPath, err)
	}
	return []ssh.Signer{cs, s}, nil
}

// agentHolds reports whether the agent has the key whose public half is
// at path.pub.
func agentHolds(agentSigners []ssh.Signer, path string) bool {
	data, err := os.ReadFile(path + ".pub")
	if err != nil {
		return false
	}
	pub, _, _, _, err := ssh.ParseAuthorizedKey(data)
	if err != nil {
		return false
	}
	want := pub.Marshal()
	for _, s := range agentSigners {
		k := s.PublicKey()
		if c, ok := k.(*ssh.Certificate); ok {
			k = c.Key
		}
		if bytes.Equal(k.Marshal(), want) {
			return true
		}
	}
	return false
}

// describe names a signer for messages: its type and fingerprint.
func describe(s ssh.Signer) string {
	k := s.PublicKey()
	if c, ok := k.(*ssh.Certificate); ok {
		return fmt.Sprintf("certificate %q of %s", c.KeyId, ssh.FingerprintSHA256(c.Key))
	}
	return strings.TrimSpace(k.Type() + " " + ssh.FingerprintSHA256(k))
}
