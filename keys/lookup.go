package keys

import "golang.org/x/crypto/ssh"

// Len returns the number of CA keys.
func (c *TrustedCAs) Len() int {
	if c == nil {
		return 0
	}
	return len(c.keys)
}

// Listing is a keys file line that lists a key.
type Listing struct {
	Line   int    // line number in the keys file, from 1
	UserID string // the line's comment
}

// Lookup returns the lines that list key, in file order, whatever their
// options say (from=, expiry-time=, principals). It answers "could this
// key log in", not "may it now": see Check for that.
func (kf *KeysFile) Lookup(key ssh.PublicKey) []Listing {
	if kf == nil {
		return nil
	}
	var out []Listing
	for _, e := range kf.entries[string(key.Marshal())] {
		out = append(out, Listing{Line: e.line, UserID: e.userID})
	}
	return out
}
