package apps

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// A browser's session with an instance's applications is a cookie sealed
// (AES-256-GCM) with a key kept under the server's data dir: it says which
// user, for which instance, until when, and holds the SHA-256 of the API
// token it was made from (never the token), so that a revoked or expired
// token ends the session at once. The cookie is HttpOnly, Secure,
// SameSite=Lax, Path=/ and host-only on the instance's application origin
// (no Domain attribute), so no other host, Studio's included, ever gets it.

// CookieName is the name of the session cookie.
const CookieName = "chub_app_session"

// StudioCookie is Studio's session cookie (api.SessionCookie): on Studio's
// origin it lets ServeHandoff sign a browser in to an application origin.
// It is no credential on an application origin, and neither it nor the CSRF
// cookie (api.CSRFCookie) reaches an application or may be set by one.
const (
	StudioCookie     = "chub_session"
	studioCSRFCookie = "chub_csrf"
)

// session is the sealed content of a cookie.
type session struct {
	UserID    string `json:"u"`
	ComputeID string `json:"c"`
	TokenHash string `json:"h"`
	Expires   int64  `json:"e"` // unix seconds
}

// sealer seals and opens sessions.
type sealer struct {
	aead cipher.AEAD
}

func newSealer(key []byte) (*sealer, error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("session key: %d bytes; want 32", len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &sealer{aead: aead}, nil
}

// LoadOrCreateKey reads the 32-byte session key at path, making it (mode
// 0600) when it does not exist yet.
func LoadOrCreateKey(path string) ([]byte, error) {
	key, err := os.ReadFile(path)
	if err == nil {
		if len(key) != 32 {
			return nil, fmt.Errorf("session key %s: %d bytes; want 32 (delete it to make a new one)", path, len(key))
		}
		return key, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	key = make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, key, 0o600); err != nil {
		return nil, err
	}
	return key, os.Rename(tmp, path)
}

// seal makes a cookie value of s.
func (k *sealer) seal(s session) string {
	plain, _ := json.Marshal(s)
	nonce := make([]byte, k.aead.NonceSize())
	rand.Read(nonce)
	return base64.RawURLEncoding.EncodeToString(k.aead.Seal(nonce, nonce, plain, []byte(CookieName)))
}

var errBadSession = errors.New("the session cookie is invalid or expired; sign in again")

// open checks a cookie value and returns its session, refusing expired ones.
func (k *sealer) open(v string, now time.Time) (session, error) {
	raw, err := base64.RawURLEncoding.DecodeString(v)
	if err != nil || len(raw) < k.aead.NonceSize() {
		return session{}, errBadSession
	}
	n := k.aead.NonceSize()
	plain, err := k.aead.Open(nil, raw[:n], raw[n:], []byte(CookieName))
	if err != nil {
		return session{}, errBadSession
	}
	var s session
	if err := json.Unmarshal(plain, &s); err != nil || now.Unix() >= s.Expires {
		return session{}, errBadSession
	}
	return s, nil
}
