package apps

import (
	"bytes"
	"encoding/base64"
	"testing"
	"time"
	"unicode/utf8"
)

// FuzzSessionCookie: a cookie value the server did not seal never opens;
// one it sealed opens to the same session until it expires, and not once
// one byte of its ciphertext changes or under another key.
func FuzzSessionCookie(f *testing.F) {
	f.Add("", "user-one", "c1", "hash", int64(3600), uint16(0), byte(1))
	f.Add("!!!", "u", "", "", int64(-1), uint16(7), byte(0x80))
	f.Add("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "u", "c", "h", int64(0), uint16(40), byte(2))
	f.Add("eyJ1IjoiYWRtaW4iLCJjIjoiYzEiLCJoIjoiaCIsImUiOjk5OTk5OTk5OTl9", "admin", "c1", "h", int64(1), uint16(3), byte(4))
	key := bytes.Repeat([]byte{7}, 32)
	s, err := newSealer(key)
	if err != nil {
		f.Fatal(err)
	}
	other, _ := newSealer(bytes.Repeat([]byte{8}, 32))
	now := time.Unix(1_800_000_000, 0)
	f.Fuzz(func(t *testing.T, forged, user, compute, hash string, ttl int64, at uint16, flip byte) {
		if got, err := s.open(forged, now); err == nil {
			t.Fatalf("a cookie the server never sealed opened: %q gave %+v", forged, got)
		}
		if !utf8.ValidString(user) || !utf8.ValidString(compute) || !utf8.ValidString(hash) {
			return // the ids and the hash are UTF-8 (they come from the store)
		}
		in := session{UserID: user, ComputeID: compute, TokenHash: hash, Expires: now.Unix() + ttl}
		if ttl > 1<<40 || ttl < -(1<<40) {
			in.Expires = now.Unix() + 3600
		}
		v := s.seal(in)
		got, err := s.open(v, now)
		switch {
		case in.Expires > now.Unix() && (err != nil || got != in):
			t.Fatalf("seal then open of %+v gave %+v, %v", in, got, err)
		case in.Expires <= now.Unix() && err == nil:
			t.Fatalf("an expired session %+v opened", in)
		}
		if _, err := other.open(v, now.Add(-time.Duration(1<<40))); err == nil {
			t.Fatalf("a cookie opened under another key")
		}
		if flip == 0 || len(v) == 0 {
			return
		}
		raw, _ := base64.RawURLEncoding.DecodeString(v)
		tampered := append([]byte(nil), raw...)
		tampered[int(at)%len(tampered)] ^= flip
		if _, err := s.open(base64.RawURLEncoding.EncodeToString(tampered), now.Add(-time.Duration(1<<40))); err == nil {
			t.Fatalf("a cookie with byte %d changed (^%#x) opened", int(at)%len(tampered), flip)
		}
	})
}
