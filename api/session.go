package api

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"strings"
	"time"

	"github.com/computehub/chub"
)

// Browser sessions (Studio): a session is a token that expires, kept in an
// HttpOnly cookie; state-changing calls made with it must repeat the CSRF
// cookie's value in the X-CSRF-Token header (double submit), which a page of
// another origin cannot read.
const (
	SessionCookie = "chub_session"
	CSRFCookie    = "chub_csrf"
	CSRFHeader    = "X-CSRF-Token"
)

func (s *Server) authenticateSession(r *http.Request, secret string) (*chub.User, error) {
	u, err := s.cfg.Store.Authenticate(r.Context(), hashToken(secret))
	if err != nil {
		return nil, chub.Errorf(chub.KindUnauthenticated, "SessionExpired", "", "your session has ended; sign in again")
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		c, err := r.Cookie(CSRFCookie)
		h := r.Header.Get(CSRFHeader)
		if err != nil || h == "" || subtle.ConstantTimeCompare([]byte(c.Value), []byte(h)) != 1 {
			return nil, chub.Errorf(chub.KindForbidden, "CsrfTokenMismatch", "", "the request lacks the %s header matching the %s cookie; reload the page", CSRFHeader, CSRFCookie)
		}
	}
	return u, nil
}

func randomString() string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// createSession signs a browser in (POST /chub/v1/session) with
// {"userName","password"} or {"token"} (an API token, never stored in the
// cookie: a new session token is made) and sets the session and CSRF cookies.
// DELETE of the same path is served by endSession.
func (s *Server) createSession(w http.ResponseWriter, r *http.Request) (*chub.User, error) {
	if a := auditOf(r.Context()); a != nil {
		a.action, a.resource = "ComputeHub/signin/action", chub.RootScope
	}
	var body struct {
		UserName string `json:"userName"`
		Password string `json:"password"`
		Token    string `json:"token"`
	}
	if err := decode(r, &body); err != nil {
		return nil, err
	}
	var u *chub.User
	if body.Token != "" {
		var err error
		if u, err = s.cfg.Store.Authenticate(r.Context(), hashToken(strings.TrimSpace(body.Token))); err != nil {
			return nil, chub.Errorf(chub.KindUnauthenticated, "InvalidAuthenticationToken", "", "the API token is invalid, expired or revoked")
		}
	} else {
		var err error
		if u, err = s.checkPassword(w, r, body.UserName, body.Password); err != nil {
			return u, err
		}
	}
	secret, t := NewToken(u.ID, "studio session", SessionTTL)
	if err := s.cfg.Store.CreateToken(r.Context(), t); err != nil {
		return u, err
	}
	expires := time.Now().Add(SessionTTL)
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: secret, Path: "/", Expires: expires, HttpOnly: true, Secure: true, SameSite: http.SameSiteStrictMode})
	http.SetCookie(w, &http.Cookie{Name: CSRFCookie, Value: randomString(), Path: "/", Expires: expires, Secure: true, SameSite: http.SameSiteStrictMode})
	writeJSON(w, http.StatusOK, map[string]any{"user": toUserJSON(u), "expiresAt": expires.UTC()})
	return u, nil
}

// endSession signs the browser out: the session token is revoked and the
// cookies cleared (DELETE /chub/v1/session).
func (s *Server) endSession(w http.ResponseWriter, r *http.Request, _ params) error {
	if c, err := r.Cookie(SessionCookie); err == nil {
		hash := hashToken(c.Value)
		if ts, err := s.cfg.Store.ListTokens(r.Context(), caller(r).ID); err == nil {
			for _, t := range ts {
				if t.Hash == hash {
					s.cfg.Store.RevokeToken(r.Context(), t.UserID, t.ID)
				}
			}
		}
	}
	for _, name := range []string{SessionCookie, CSRFCookie} {
		http.SetCookie(w, &http.Cookie{Name: name, Value: "", Path: "/", MaxAge: -1, HttpOnly: name == SessionCookie, Secure: true, SameSite: http.SameSiteStrictMode})
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
