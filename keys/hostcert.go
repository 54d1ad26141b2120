package keys

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/crypto/ssh"
)

// LoadHostCertSigner reads the host certificate at path and pairs it with
// the host key signer, so clients that trust the host CA with a
// "@cert-authority" known_hosts line can verify the server. The file must
// hold a host certificate of exactly that key, valid now.
func LoadHostCertSigner(path string, host ssh.Signer, now time.Time) (ssh.Signer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("keys: read host certificate: %w", err)
	}
	pub, _, _, _, err := ssh.ParseAuthorizedKey(data)
	if err != nil {
		return nil, fmt.Errorf("keys: %s: %w", path, err)
	}
	cert, ok := pub.(*ssh.Certificate)
	if !ok {
		return nil, fmt.Errorf("keys: %s: not a certificate", path)
	}
	if cert.CertType != ssh.HostCert {
		return nil, fmt.Errorf("keys: %s: a user certificate, not a host certificate", path)
	}
	if !bytes.Equal(cert.Key.Marshal(), host.PublicKey().Marshal()) {
		return nil, fmt.Errorf("keys: %s: certifies %s, not the host key %s", path,
			ssh.FingerprintSHA256(cert.Key), ssh.FingerprintSHA256(host.PublicKey()))
	}
	unix := now.Unix()
	if unix < 0 || uint64(unix) < cert.ValidAfter ||
		(cert.ValidBefore != ssh.CertTimeInfinity && uint64(unix) >= cert.ValidBefore) {
		return nil, fmt.Errorf("keys: %s: host certificate not valid now (valid %s to %s)", path,
			certTime(cert.ValidAfter), certTime(cert.ValidBefore))
	}
	s, err := ssh.NewCertSigner(cert, host)
	if err != nil {
		return nil, fmt.Errorf("keys: %s: %w", path, err)
	}
	return s, nil
}

// SignHostCert signs a host certificate for key, valid for the host names
// in principals, with a SHA-2 signature.
func SignHostCert(ca ssh.Signer, req CertRequest) (*ssh.Certificate, error) {
	if len(req.Principals) == 0 {
		return nil, errors.New("keys: sign: a host certificate needs host names")
	}
	if len(req.CriticalOptions) > 0 {
		return nil, errors.New("keys: sign: host certificates take no critical options")
	}
	return signCert(ca, req, ssh.HostCert, ssh.Permissions{})
}
