package keys

import (
	"bytes"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"slices"
	"sort"
	"time"

	"golang.org/x/crypto/ssh"
)

// KRL wire constants, from OpenSSH's PROTOCOL.krl.
const (
	krlMagic         = 0x5353484b524c0a00 // "SSHKRL\n\0"
	krlFormatVersion = 1

	krlSectionCertificates = 1
	krlSectionExplicitKey  = 2
	krlSectionSHA1         = 3
	krlSectionSignature    = 4
	krlSectionSHA256       = 5
	krlSectionExtension    = 255

	krlCertSerialList   = 0x20
	krlCertSerialRange  = 0x21
	krlCertSerialBitmap = 0x22
	krlCertKeyID        = 0x23
	krlCertExtension    = 0x39

	// krlMaxBitmap is the largest serial bitmap OpenSSH reads: an mpint of
	// at most 16384 bits plus a sign byte.
	krlMaxBitmap = 16384/8 + 1
)

// SerialRange is an inclusive range of certificate serial numbers.
type SerialRange struct{ Lo, Hi uint64 }

// KRL is an OpenSSH key revocation list, as made by "ssh-keygen -k". It
// revokes certificates by serial number and key id (per CA, or for every CA),
// and keys (plain, or the key inside a certificate, or a CA key) by their
// blob or its SHA-1 or SHA-256 hash.
//
// A KRL is not safe for concurrent modification; once built it may be read
// (Revoked) from any number of goroutines.
type KRL struct {
	Version   uint64
	Generated time.Time
	Comment   string

	certs  []*krlCerts         // in file order; at most one per CA (nil CA: every CA)
	keys   map[string]struct{} // plain key wire encodings
	sha1   map[string]struct{}
	sha256 map[string]struct{}
}

// krlCerts is the revocation of certificates issued by one CA.
type krlCerts struct {
	ca      []byte        // CA public key wire encoding; nil means every CA
	serials []SerialRange // sorted, merged
	ids     map[string]struct{}
}

// NewKRL returns an empty KRL.
func NewKRL() *KRL {
	return &KRL{
		keys:   map[string]struct{}{},
		sha1:   map[string]struct{}{},
		sha256: map[string]struct{}{},
	}
}

// LoadKRL reads and parses the KRL at path.
func LoadKRL(path string) (*KRL, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("keys: read revoked keys: %w", err)
	}
	k, err := ParseKRL(data)
	if err != nil {
		return nil, fmt.Errorf("keys: %s: %w", path, err)
	}
	return k, nil
}

// krlReader reads SSH wire types from a byte slice; the first error sticks.
type krlReader struct {
	b   []byte
	err error
}

func (r *krlReader) fail(format string, a ...any) {
	if r.err == nil {
		r.err = fmt.Errorf(format, a...)
	}
}

func (r *krlReader) u64() uint64 {
	if r.err != nil {
		return 0
	}
	if len(r.b) < 8 {
		r.fail("truncated")
		return 0
	}
	v := binary.BigEndian.Uint64(r.b)
	r.b = r.b[8:]
	return v
}

func (r *krlReader) u32() uint32 {
	if r.err != nil {
		return 0
	}
	if len(r.b) < 4 {
		r.fail("truncated")
		return 0
	}
	v := binary.BigEndian.Uint32(r.b)
	r.b = r.b[4:]
	return v
}

func (r *krlReader) byte() byte {
	if r.err != nil {
		return 0
	}
	if len(r.b) < 1 {
		r.fail("truncated")
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v
}

func (r *krlReader) str() []byte {
	n := r.u32()
	if r.err != nil {
		return nil
	}
	if uint64(n) > uint64(len(r.b)) {
		r.fail("truncated string")
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

func (r *krlReader) boolean() bool { return r.byte() != 0 }

func (r *krlReader) empty() bool { return len(r.b) == 0 }

// ParseKRL parses a KRL in OpenSSH's binary format. Anything it does not
// understand — an unknown section, a critical extension, a signature
// section (OpenSSH 9.4 and later refuse those too), a zero serial, a bad key
// — is an error: a caller must then refuse every key.
func ParseKRL(data []byte) (*KRL, error) {
	k, err := parseKRL(data)
	if err != nil {
		return nil, fmt.Errorf("malformed revocation list: %w", err)
	}
	return k, nil
}

func parseKRL(data []byte) (*KRL, error) {
	r := &krlReader{b: data}
	if r.u64() != krlMagic || r.err != nil {
		return nil, errors.New("not an OpenSSH KRL (bad magic)")
	}
	if v := r.u32(); v != krlFormatVersion {
		r.fail("unsupported format version %d", v)
	}
	k := NewKRL()
	k.Version = r.u64()
	gen := r.u64()
	_ = r.u64() // flags: none defined
	_ = r.str() // reserved
	k.Comment = string(r.str())
	if r.err != nil {
		return nil, fmt.Errorf("header: %w", r.err)
	}
	if gen <= math.MaxInt64 {
		k.Generated = time.Unix(int64(gen), 0).UTC()
	}
	for !r.empty() {
		typ := r.byte()
		body := r.str()
		if r.err != nil {
			return nil, fmt.Errorf("section: %w", r.err)
		}
		var err error
		switch typ {
		case krlSectionCertificates:
			err = k.parseCertSection(body)
		case krlSectionExplicitKey:
			err = parseBlobs(body, func(b []byte) error {
				pub, err := ssh.ParsePublicKey(b)
				if err != nil {
					return fmt.Errorf("revoked key: %w", err)
				}
				if _, ok := pub.(*ssh.Certificate); ok {
					return errors.New("revoked key is a certificate")
				}
				k.keys[string(b)] = struct{}{}
				return nil
			})
		case krlSectionSHA1, krlSectionSHA256:
			set, size := k.sha1, sha1.Size
			if typ == krlSectionSHA256 {
				set, size = k.sha256, sha256.Size
			}
			var last []byte
			err = parseBlobs(body, func(b []byte) error {
				if len(b) != size {
					return fmt.Errorf("key hash of %d bytes, want %d", len(b), size)
				}
				if last != nil && bytes.Compare(last, b) >= 0 {
					return errors.New("key hashes out of order")
				}
				last = b
				set[string(b)] = struct{}{}
				return nil
			})
		case krlSectionSignature:
			err = errors.New("signed revocation lists are not supported")
		case krlSectionExtension:
			err = parseExtension(body)
		default:
			err = fmt.Errorf("unknown section type %d", typ)
		}
		if err != nil {
			return nil, err
		}
	}
	return k, nil
}

// parseBlobs calls f for each string in body; there must be at least one.
func parseBlobs(body []byte, f func([]byte) error) error {
	r := &krlReader{b: body}
	if r.empty() {
		return errors.New("empty section")
	}
	for !r.empty() {
		b := r.str()
		if r.err != nil {
			return r.err
		}
		if err := f(b); err != nil {
			return err
		}
	}
	return nil
}

// parseExtension accepts a non-critical extension (ignored) and refuses a
// critical one.
func parseExtension(body []byte) error {
	r := &krlReader{b: body}
	name := r.str()
	critical := r.boolean()
	_ = r.str()
	if r.err != nil {
		return fmt.Errorf("extension: %w", r.err)
	}
	if !r.empty() {
		return errors.New("extension: trailing data")
	}
	if critical {
		return fmt.Errorf("unsupported critical extension %q", name)
	}
	return nil
}

func (k *KRL) parseCertSection(body []byte) error {
	r := &krlReader{b: body}
	caBlob := r.str()
	_ = r.str() // reserved
	if r.err != nil {
		return fmt.Errorf("certificate section: %w", r.err)
	}
	var ca ssh.PublicKey
	if len(caBlob) > 0 {
		var err error
		if ca, err = ssh.ParsePublicKey(caBlob); err != nil {
			return fmt.Errorf("certificate section CA key: %w", err)
		}
	}
	c := k.certsFor(ca, true)
	defer c.normalize()
	for !r.empty() {
		typ := r.byte()
		sub := r.str()
		if r.err != nil {
			return fmt.Errorf("certificate section: %w", r.err)
		}
		s := &krlReader{b: sub}
		switch typ {
		case krlCertSerialList:
			for !s.empty() && s.err == nil {
				v := s.u64()
				if s.err == nil {
					if err := c.appendSerials(v, v); err != nil {
						return err
					}
				}
			}
		case krlCertSerialRange:
			lo, hi := s.u64(), s.u64()
			if s.err == nil {
				if !s.empty() {
					return errors.New("serial range: trailing data")
				}
				if err := c.appendSerials(lo, hi); err != nil {
					return err
				}
			}
		case krlCertSerialBitmap:
			off := s.u64()
			bm := s.str()
			if s.err == nil {
				if !s.empty() {
					return errors.New("serial bitmap: trailing data")
				}
				if err := c.addBitmap(off, bm); err != nil {
					return err
				}
			}
		case krlCertKeyID:
			if s.empty() {
				return errors.New("empty key id section")
			}
			for !s.empty() && s.err == nil {
				id := s.str()
				if s.err == nil {
					c.ids[string(id)] = struct{}{}
				}
			}
		case krlCertExtension:
			if err := parseExtension(sub); err != nil {
				return err
			}
		default:
			return fmt.Errorf("unknown certificate section type %#x", typ)
		}
		if s.err != nil {
			return fmt.Errorf("certificate section type %#x: %w", typ, s.err)
		}
	}
	return nil
}

// addBitmap revokes off+N for every bit N set in the mpint bm.
func (c *krlCerts) addBitmap(off uint64, bm []byte) error {
	if len(bm) > krlMaxBitmap {
		return errors.New("serial bitmap too large")
	}
	if len(bm) > 0 && bm[0]&0x80 != 0 {
		return errors.New("serial bitmap is negative")
	}
	for i := 0; i < len(bm)*8; i++ {
		if bm[len(bm)-1-i/8]&(1<<(i%8)) == 0 {
			continue
		}
		if off > math.MaxUint64-uint64(i) {
			return errors.New("serial bitmap overflows")
		}
		s := off + uint64(i)
		if err := c.appendSerials(s, s); err != nil {
			return err
		}
	}
	return nil
}

// certsFor returns the section for ca (nil: every CA), creating it if add.
func (k *KRL) certsFor(ca ssh.PublicKey, add bool) *krlCerts {
	var blob []byte
	if ca != nil {
		blob = ca.Marshal()
	}
	for _, c := range k.certs {
		if (c.ca == nil) == (blob == nil) && bytes.Equal(c.ca, blob) {
			return c
		}
	}
	if !add {
		return nil
	}
	c := &krlCerts{ca: blob, ids: map[string]struct{}{}}
	k.certs = append(k.certs, c)
	return c
}

// appendSerials records lo..hi without ordering; normalize must follow.
// Parsing uses it so a large KRL costs O(n log n), not O(n²).
func (c *krlCerts) appendSerials(lo, hi uint64) error {
	if lo == 0 || lo > hi {
		return fmt.Errorf("invalid serial range %d-%d", lo, hi)
	}
	c.serials = append(c.serials, SerialRange{lo, hi})
	return nil
}

// normalize sorts the serial ranges and merges those that overlap or touch.
func (c *krlCerts) normalize() {
	sort.Slice(c.serials, func(i, j int) bool { return c.serials[i].Lo < c.serials[j].Lo })
	out := c.serials[:0]
	for _, r := range c.serials {
		if n := len(out); n > 0 && (out[n-1].Hi == math.MaxUint64 || r.Lo <= out[n-1].Hi+1) {
			out[n-1].Hi = max(out[n-1].Hi, r.Hi)
			continue
		}
		out = append(out, r)
	}
	c.serials = out
}

// addSerials revokes lo..hi, keeping serials sorted and merged.
func (c *krlCerts) addSerials(lo, hi uint64) error {
	if lo == 0 || lo > hi {
		return fmt.Errorf("invalid serial range %d-%d", lo, hi)
	}
	// The first range that overlaps or touches lo..hi, then every range
	// after it that does too, is absorbed.
	i := sort.Search(len(c.serials), func(i int) bool { return c.serials[i].Hi >= lo-1 })
	j := i
	for j < len(c.serials) && (c.serials[j].Lo <= hi || (hi != math.MaxUint64 && c.serials[j].Lo == hi+1)) {
		lo = min(lo, c.serials[j].Lo)
		hi = max(hi, c.serials[j].Hi)
		j++
	}
	c.serials = slices.Replace(c.serials, i, j, SerialRange{lo, hi})
	return nil
}

func (c *krlCerts) revokesSerial(s uint64) bool {
	i := sort.Search(len(c.serials), func(i int) bool { return c.serials[i].Hi >= s })
	return i < len(c.serials) && c.serials[i].Lo <= s
}

// ErrRevoked is the refusal of a key or certificate the KRL revokes.
var ErrRevoked = &RefusedError{Reason: "revoked"}

// Revoked returns a *RefusedError (ErrRevoked, with what matched as the
// detail) if the KRL revokes key, or nil. For a certificate it checks, as
// OpenSSH does, the certified key by blob and hash, the certificate by key id
// and (non-zero) serial under its CA and under every-CA sections, and then
// the CA key itself by blob and hash.
func (k *KRL) Revoked(key ssh.PublicKey) error {
	if k == nil {
		return nil
	}
	plain := key
	cert, isCert := key.(*ssh.Certificate)
	if isCert {
		plain = cert.Key
	}
	if what := k.keyRevoked(plain); what != "" {
		return refused(ErrRevoked, "%s %s", what, ssh.FingerprintSHA256(plain))
	}
	if !isCert {
		return nil
	}
	caBlob := cert.SignatureKey.Marshal()
	for _, c := range k.certs {
		if c.ca != nil && !bytes.Equal(c.ca, caBlob) {
			continue
		}
		if _, ok := c.ids[cert.KeyId]; ok {
			return refused(ErrRevoked, "key id %q", cert.KeyId)
		}
		if cert.Serial != 0 && c.revokesSerial(cert.Serial) {
			return refused(ErrRevoked, "serial %d", cert.Serial)
		}
	}
	if what := k.keyRevoked(cert.SignatureKey); what != "" {
		return refused(ErrRevoked, "CA %s %s", what, ssh.FingerprintSHA256(cert.SignatureKey))
	}
	return nil
}

// keyRevoked says how a plain key is revoked ("key", "key hash"), or "".
func (k *KRL) keyRevoked(key ssh.PublicKey) string {
	blob := key.Marshal()
	if _, ok := k.keys[string(blob)]; ok {
		return "key"
	}
	h256 := sha256.Sum256(blob)
	if _, ok := k.sha256[string(h256[:])]; ok {
		return "key hash"
	}
	h1 := sha1.Sum(blob)
	if _, ok := k.sha1[string(h1[:])]; ok {
		return "key hash"
	}
	return ""
}

// RevokeSerials revokes the certificates of ca with serials lo..hi. Serial 0
// cannot be revoked (OpenSSH treats it as "no serial").
func (k *KRL) RevokeSerials(ca ssh.PublicKey, lo, hi uint64) error {
	if ca == nil {
		return errors.New("keys: revoke: serials need a CA key")
	}
	if err := k.certsFor(plainKey(ca), true).addSerials(lo, hi); err != nil {
		return fmt.Errorf("keys: revoke: %w", err)
	}
	return nil
}

// RevokeKeyID revokes every certificate with key id id issued by ca (nil:
// by any CA).
func (k *KRL) RevokeKeyID(ca ssh.PublicKey, id string) error {
	if id == "" {
		return errors.New("keys: revoke: empty key id")
	}
	if ca != nil {
		ca = plainKey(ca)
	}
	k.certsFor(ca, true).ids[id] = struct{}{}
	return nil
}

// RevokeKey revokes a key explicitly; a certificate's certified key is
// revoked, which revokes every certificate of that key.
func (k *KRL) RevokeKey(key ssh.PublicKey) {
	k.keys[string(plainKey(key).Marshal())] = struct{}{}
}

// RevokeKeyHash revokes a key by the SHA-256 hash of its blob.
func (k *KRL) RevokeKeyHash(key ssh.PublicKey) {
	h := sha256.Sum256(plainKey(key).Marshal())
	k.sha256[string(h[:])] = struct{}{}
}

func plainKey(key ssh.PublicKey) ssh.PublicKey {
	if c, ok := key.(*ssh.Certificate); ok {
		return c.Key
	}
	return key
}

// krlWriter appends SSH wire types.
type krlWriter struct{ b []byte }

func (w *krlWriter) u64(v uint64) { w.b = binary.BigEndian.AppendUint64(w.b, v) }
func (w *krlWriter) u32(v uint32) { w.b = binary.BigEndian.AppendUint32(w.b, v) }
func (w *krlWriter) byte(v byte)  { w.b = append(w.b, v) }
func (w *krlWriter) str(v []byte) { w.u32(uint32(len(v))); w.b = append(w.b, v...) }
func (w *krlWriter) section(t byte, body []byte) {
	w.byte(t)
	w.str(body)
}

// Marshal encodes the KRL in OpenSSH's binary format. Serials are written
// as lists and ranges (no bitmaps); sets are written in sorted order, so the
// same KRL always encodes to the same bytes.
func (k *KRL) Marshal() []byte {
	w := &krlWriter{}
	w.u64(krlMagic)
	w.u32(krlFormatVersion)
	w.u64(k.Version)
	var gen uint64
	if !k.Generated.IsZero() && k.Generated.Unix() > 0 {
		gen = uint64(k.Generated.Unix())
	}
	w.u64(gen)
	w.u64(0)   // flags
	w.str(nil) // reserved
	w.str([]byte(k.Comment))
	for _, c := range k.certs {
		if len(c.serials) == 0 && len(c.ids) == 0 {
			continue
		}
		s := &krlWriter{}
		s.str(c.ca)
		s.str(nil) // reserved
		var singles []uint64
		for _, r := range c.serials {
			if r.Lo == r.Hi {
				singles = append(singles, r.Lo)
				continue
			}
			sub := &krlWriter{}
			sub.u64(r.Lo)
			sub.u64(r.Hi)
			s.section(krlCertSerialRange, sub.b)
		}
		if len(singles) > 0 {
			sub := &krlWriter{}
			for _, v := range singles {
				sub.u64(v)
			}
			s.section(krlCertSerialList, sub.b)
		}
		if len(c.ids) > 0 {
			sub := &krlWriter{}
			for _, id := range sortedKeys(c.ids) {
				sub.str([]byte(id))
			}
			s.section(krlCertKeyID, sub.b)
		}
		w.section(krlSectionCertificates, s.b)
	}
	for _, set := range []struct {
		typ byte
		m   map[string]struct{}
	}{{krlSectionExplicitKey, k.keys}, {krlSectionSHA1, k.sha1}, {krlSectionSHA256, k.sha256}} {
		if len(set.m) == 0 {
			continue
		}
		s := &krlWriter{}
		for _, b := range sortedKeys(set.m) {
			s.str([]byte(b))
		}
		w.section(set.typ, s.b)
	}
	return w.b
}

func sortedKeys(m map[string]struct{}) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
