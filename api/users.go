package api

import (
	"crypto/rand"
	"encoding/base64"
	"net/http"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/computehub/chub"
	"github.com/computehub/chub/access"
	"github.com/computehub/chub/lifecycle"
)

// DefaultTenant is the tenant id of users created without one.
const DefaultTenant = "00000000-0000-0000-0000-000000000001"

type userJSON struct {
	ObjectID    string    `json:"objectId"`
	TenantID    string    `json:"tenantId"`
	Name        string    `json:"name"`
	DisplayName string    `json:"displayName"`
	Admin       bool      `json:"admin"`
	CreatedAt   time.Time `json:"createdAt"`
}

func toUserJSON(u *chub.User) userJSON {
	return userJSON{ObjectID: u.ID, TenantID: u.TenantID, Name: u.Name, DisplayName: u.DisplayName, Admin: u.Admin, CreatedAt: u.CreatedAt}
}

func (s *Server) me(w http.ResponseWriter, r *http.Request, _ params) error {
	writeJSON(w, http.StatusOK, toUserJSON(caller(r)))
	return nil
}

func (s *Server) listUsers(w http.ResponseWriter, r *http.Request, _ params) error {
	if err := s.authorize(r, chub.ActionUsersRead, chub.RootScope); err != nil {
		return err
	}
	us, err := s.cfg.Store.ListUsers(r.Context())
	if err != nil {
		return err
	}
	out := []userJSON{}
	for _, u := range us {
		out = append(out, toUserJSON(u))
	}
	writeJSON(w, http.StatusOK, map[string]any{"value": out})
	return nil
}

// NewUser validates and builds a user; shared with the server's bootstrap.
func NewUser(name, displayName, tenant string, admin bool) (*chub.User, error) {
	name = strings.TrimSpace(name)
	if name == "" || len(name) > 64 || strings.ContainsAny(name, " /\\:@\t\n") {
		return nil, chub.Invalid("InvalidUserName", "name", "user name %q must be 1 to 64 characters without spaces, slashes, colons or '@'", name)
	}
	if tenant == "" {
		tenant = DefaultTenant
	}
	if displayName == "" {
		displayName = name
	}
	return &chub.User{ID: lifecycle.NewID(), TenantID: tenant, Name: name, DisplayName: displayName, Admin: admin, CreatedAt: time.Now().UTC()}, nil
}

func (s *Server) createUser(w http.ResponseWriter, r *http.Request, _ params) error {
	if err := s.authorize(r, chub.ActionUsersManage, chub.RootScope); err != nil {
		return err
	}
	var body struct {
		Name        string `json:"name"`
		DisplayName string `json:"displayName"`
		TenantID    string `json:"tenantId"`
		Admin       bool   `json:"admin"`
		Password    string `json:"password"`
	}
	if err := decode(r, &body); err != nil {
		return err
	}
	u, err := NewUser(body.Name, body.DisplayName, body.TenantID, body.Admin)
	if err != nil {
		return err
	}
	var hash string
	if body.Password != "" {
		if hash, err = HashPassword(body.Password); err != nil {
			return err
		}
	}
	if err := s.cfg.Store.CreateUser(r.Context(), u); err != nil {
		return err
	}
	if hash != "" {
		if err := s.cfg.Store.SetPassword(r.Context(), u.ID, hash); err != nil {
			return err
		}
	}
	if u.Admin {
		if err := Grant(r.Context(), s.cfg.Store, u.ID, access.OwnerID, chub.RootScope, caller(r).ID); err != nil {
			return err
		}
	}
	writeJSON(w, http.StatusCreated, toUserJSON(u))
	return nil
}

// HashPassword hashes a password with bcrypt, after checking its length.
func HashPassword(pw string) (string, error) {
	if len(pw) < 8 || len(pw) > 72 {
		return "", chub.Invalid("InvalidPassword", "password", "a password must be 8 to 72 characters long")
	}
	h, err := bcrypt.GenerateFromPassword([]byte(pw), 11)
	return string(h), err
}

func (s *Server) userParam(r *http.Request, p params) (*chub.User, error) {
	u, err := s.cfg.Store.UserByName(r.Context(), p["user"])
	if chub.IsNotFound(err) {
		if u2, err2 := s.cfg.Store.UserByID(r.Context(), p["user"]); err2 == nil {
			return u2, nil
		}
	}
	return u, err
}

// selfOr lets users act on themselves, and users managers on anyone.
func (s *Server) selfOr(r *http.Request, u *chub.User) error {
	if u.ID == caller(r).ID {
		return nil
	}
	return s.authorize(r, chub.ActionUsersManage, chub.RootScope)
}

func (s *Server) deleteUser(w http.ResponseWriter, r *http.Request, p params) error {
	if err := s.authorize(r, chub.ActionUsersManage, chub.RootScope); err != nil {
		return err
	}
	u, err := s.userParam(r, p)
	if chub.IsNotFound(err) {
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	if err != nil {
		return err
	}
	if u.ID == caller(r).ID {
		return chub.Conflict("CannotDeleteSelf", "user", "you cannot delete your own user")
	}
	if err := s.cfg.Store.DeleteUser(r.Context(), u.ID); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

type tokenJSON struct {
	ID        string     `json:"id"`
	Name      string     `json:"name"`
	CreatedAt time.Time  `json:"createdAt"`
	ExpiresAt *time.Time `json:"expiresAt"`
	RevokedAt *time.Time `json:"revokedAt"`
}

func (s *Server) listTokens(w http.ResponseWriter, r *http.Request, p params) error {
	u, err := s.userParam(r, p)
	if err != nil {
		return err
	}
	if err := s.selfOr(r, u); err != nil {
		return err
	}
	ts, err := s.cfg.Store.ListTokens(r.Context(), u.ID)
	if err != nil {
		return err
	}
	out := []tokenJSON{}
	for _, t := range ts {
		out = append(out, tokenJSON{ID: t.ID, Name: t.Name, CreatedAt: t.CreatedAt, ExpiresAt: t.ExpiresAt, RevokedAt: t.RevokedAt})
	}
	writeJSON(w, http.StatusOK, map[string]any{"value": out})
	return nil
}

func (s *Server) revokeToken(w http.ResponseWriter, r *http.Request, p params) error {
	u, err := s.userParam(r, p)
	if err != nil {
		return err
	}
	if err := s.selfOr(r, u); err != nil {
		return err
	}
	if err := s.cfg.Store.RevokeToken(r.Context(), u.ID, p["token"]); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

func (s *Server) setPassword(w http.ResponseWriter, r *http.Request, p params) error {
	u, err := s.userParam(r, p)
	if err != nil {
		return err
	}
	if err := s.selfOr(r, u); err != nil {
		return err
	}
	var body struct {
		Password string `json:"password"`
	}
	if err := decode(r, &body); err != nil {
		return err
	}
	hash, err := HashPassword(body.Password)
	if err != nil {
		return err
	}
	if err := s.cfg.Store.SetPassword(r.Context(), u.ID, hash); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

// MaxTokenDays is the longest lifetime a token can be given (about ten years).
const MaxTokenDays = 3650

// SessionTTL is how long a token from a password sign-in lives.
const SessionTTL = 12 * time.Hour

// signin exchanges a user name and password for a token that expires
// (POST /chub/v1/signin, the one unauthenticated call besides /healthz).
func (s *Server) signin(w http.ResponseWriter, r *http.Request) (*chub.User, error) {
	if a := auditOf(r.Context()); a != nil {
		a.action, a.resource = "ComputeHub/signin/action", chub.RootScope
	}
	var body struct {
		UserName string `json:"userName"`
		Password string `json:"password"`
	}
	if err := decode(r, &body); err != nil {
		return nil, err
	}
	u, err := s.checkPassword(w, r, body.UserName, body.Password)
	if err != nil {
		return u, err
	}
	secret, t := NewToken(u.ID, "signin", SessionTTL)
	if err := s.cfg.Store.CreateToken(r.Context(), t); err != nil {
		return u, err
	}
	writeJSON(w, http.StatusOK, map[string]any{"token": secret, "expiresAt": t.ExpiresAt, "user": toUserJSON(u)})
	return u, nil
}

// dummyHash is compared against when a user does not exist, so that a
// sign-in takes as long either way. Made on first use: bcrypt is slow, and
// every chub process (the CLI, the agent) would otherwise pay for it at start.
var dummyHash = sync.OnceValue(func() []byte {
	h, _ := bcrypt.GenerateFromPassword([]byte("not a password of anyone"), 11)
	return h
})

// NewToken makes a token secret and its stored record.
func NewToken(userID, name string, ttl time.Duration) (string, *chub.Token) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	secret := "chub_" + base64.RawURLEncoding.EncodeToString(b[:])
	t := &chub.Token{ID: lifecycle.NewID(), UserID: userID, Name: name, Hash: hashToken(secret), CreatedAt: time.Now().UTC()}
	if ttl > 0 {
		exp := t.CreatedAt.Add(ttl)
		t.ExpiresAt = &exp
	}
	return secret, t
}

func (s *Server) createToken(w http.ResponseWriter, r *http.Request, p params) error {
	u, err := s.cfg.Store.UserByName(r.Context(), p["user"])
	if err != nil {
		return err
	}
	if err := s.selfOr(r, u); err != nil {
		return err
	}
	var body struct {
		Name          string `json:"name"`
		ExpiresInDays int    `json:"expiresInDays"`
	}
	if r.ContentLength != 0 {
		if err := decode(r, &body); err != nil {
			return err
		}
	}
	if body.ExpiresInDays < 0 || body.ExpiresInDays > MaxTokenDays {
		return chub.Invalid("InvalidExpiry", "expiresInDays", "expiresInDays must be 1 to %d (0 or omitted: the token never expires), got %d", MaxTokenDays, body.ExpiresInDays)
	}
	secret, t := NewToken(u.ID, body.Name, time.Duration(body.ExpiresInDays)*24*time.Hour)
	if err := s.cfg.Store.CreateToken(r.Context(), t); err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, map[string]any{"id": t.ID, "user": u.Name, "token": secret, "expiresAt": t.ExpiresAt})
	return nil
}
