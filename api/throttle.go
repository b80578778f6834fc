package api

import (
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/computehub/chub"
)

// SigninThrottle refuses password sign-ins after repeated failures, per
// user name and per client address: after UserLimit failures of one name
// (or AddrLimit from one address) within Window, sign-ins are refused with
// 429 for Base, then twice as long at each further lock-out, up to Max. A
// success clears the user name's count (not the address's: one valid account
// must not reset a guesser's budget). The state is in memory: a restart of
// the server forgets it.
type SigninThrottle struct {
	UserLimit int
	AddrLimit int
	Window    time.Duration
	Base      time.Duration
	Max       time.Duration
	Now       func() time.Time

	mu sync.Mutex
	m  map[string]*throttleEntry
}

type throttleEntry struct {
	fails    []time.Time // failures within the window
	until    time.Time   // refused until then
	lockouts int         // lock-outs so far, for the back-off
	last     time.Time   // the last failure
}

// NewSigninThrottle is the server's default: 5 failures of a name or 20
// from an address within 15 minutes lock for 1 minute, doubling up to 1 hour.
func NewSigninThrottle() *SigninThrottle {
	return &SigninThrottle{UserLimit: 5, AddrLimit: 20, Window: 15 * time.Minute, Base: time.Minute, Max: time.Hour}
}

// maxThrottleEntries bounds the memory a flood of names can take.
const maxThrottleEntries = 100000

func (t *SigninThrottle) now() time.Time {
	if t.Now != nil {
		return t.Now()
	}
	return time.Now()
}

func nameKey(name string) string { return "u:" + strings.ToLower(strings.TrimSpace(name)) }
func addrKey(addr string) string { return "a:" + addr }

// Check answers how long sign-ins of this name from this address are
// refused (0: not refused).
func (t *SigninThrottle) Check(name, addr string) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	var wait time.Duration
	for _, k := range []string{nameKey(name), addrKey(addr)} {
		if e := t.m[k]; e != nil && now.Before(e.until) {
			wait = max(wait, e.until.Sub(now))
		}
	}
	return wait
}

// Failed records a failed sign-in.
func (t *SigninThrottle) Failed(name, addr string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	if t.m == nil {
		t.m = map[string]*throttleEntry{}
	}
	if len(t.m) >= maxThrottleEntries {
		t.sweep(now)
	}
	t.fail(nameKey(name), t.UserLimit, now)
	t.fail(addrKey(addr), t.AddrLimit, now)
}

func (t *SigninThrottle) fail(key string, limit int, now time.Time) {
	e := t.m[key]
	if e == nil {
		e = &throttleEntry{}
		t.m[key] = e
	}
	if t.stale(e, now) {
		e.lockouts = 0 // quiet for a whole window since the last failure or lock-out: forgiven
	}
	e.last = now
	kept := e.fails[:0]
	for _, f := range e.fails {
		if now.Sub(f) < t.Window {
			kept = append(kept, f)
		}
	}
	e.fails = append(kept, now)
	if len(e.fails) >= limit {
		d := t.Base << e.lockouts
		if d > t.Max || d <= 0 {
			d = t.Max
		}
		e.lockouts++
		e.until = now.Add(d)
		e.fails = nil
	}
}

// stale reports whether an entry has been quiet for a whole window since
// its last failure and the end of its lock-out.
func (t *SigninThrottle) stale(e *throttleEntry, now time.Time) bool {
	quiet := e.last
	if e.until.After(quiet) {
		quiet = e.until
	}
	return now.Sub(quiet) > t.Window
}

// sweep drops the entries that neither lock nor count any more; when that
// is not enough (a flood of names from many addresses), it drops entries
// that do not lock now, then any, down to nine tenths of the bound.
func (t *SigninThrottle) sweep(now time.Time) {
	for k, e := range t.m {
		if t.stale(e, now) {
			delete(t.m, k)
		}
	}
	for _, evenLocked := range []bool{false, true} {
		for k, e := range t.m {
			if len(t.m) < maxThrottleEntries*9/10 {
				return
			}
			if evenLocked || !now.Before(e.until) {
				delete(t.m, k)
			}
		}
	}
}

// Succeeded clears the user name's failures and lock-out.
func (t *SigninThrottle) Succeeded(name string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.m, nameKey(name))
}

// checkPassword signs a user in by name and password, through the
// throttle: it is the one password check of /chub/v1/signin and
// /chub/v1/session. A refusal while throttled is a 429 with Retry-After.
func (s *Server) checkPassword(w http.ResponseWriter, r *http.Request, name, password string) (*chub.User, error) {
	addr := clientAddress(r)
	if wait := s.cfg.Signin.Check(name, addr); wait > 0 {
		secs := int((wait + time.Second - 1) / time.Second)
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		u, _ := s.cfg.Store.UserByName(r.Context(), name) // for the audit entry only
		return u, chub.Errorf(chub.KindTooManyRequests, "TooManySignInAttempts", "",
			"too many failed sign-ins for this user name or from this address; try again in %d seconds", secs)
	}
	refused := chub.Errorf(chub.KindUnauthenticated, "InvalidCredentials", "", "the user name or password is wrong")
	u, err := s.cfg.Store.UserByName(r.Context(), name)
	if err != nil {
		bcrypt.CompareHashAndPassword(dummyHash(), []byte(password)) // same time whether the user exists or not
		s.cfg.Signin.Failed(name, addr)
		return nil, refused
	}
	hash, err := s.cfg.Store.PasswordHash(r.Context(), u.ID)
	if err != nil || hash == "" || bcrypt.CompareHashAndPassword([]byte(hash), []byte(password)) != nil {
		s.cfg.Signin.Failed(name, addr)
		return u, refused
	}
	s.cfg.Signin.Succeeded(name)
	return u, nil
}
