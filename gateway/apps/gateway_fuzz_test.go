package apps

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// FuzzLocalPath: the hand-off's ?next= never sends the browser off the
// application origin: what localPath returns, resolved against the origin
// as a browser would (backslashes read as slashes), stays on it.
func FuzzLocalPath(f *testing.F) {
	for _, s := range []string{"/lab?token=x", "//evil.example/", "/\\evil.example", "https://evil.example", "/%2F%2Fevil.example", "/.//evil.example",
		"", "lab", "/a\r\nSet-Cookie: x=1", "/@evil.example", "/\t/evil.example", "javascript:alert(1)", "/a#frag", "/?next=//x"} {
		f.Add(s)
	}
	base, _ := url.Parse("https://ci1.apps.localhost:8443/_chub/signin")
	f.Fuzz(func(t *testing.T, next string) {
		out := localPath(next)
		if out == "" || out[0] != '/' || strings.HasPrefix(out, "//") || strings.ContainsAny(out, "\\\r\n\t\x00") {
			t.Fatalf("localPath(%q) = %q", next, out)
		}
		u, err := url.Parse(out)
		if err != nil {
			t.Fatalf("localPath(%q) = %q, which does not parse: %v", next, out, err)
		}
		if r := base.ResolveReference(u); r.Host != base.Host || r.Scheme != base.Scheme {
			t.Fatalf("localPath(%q) = %q leads to %s", next, out, r)
		}
	})
}

// FuzzAppCookies: whatever Set-Cookie lines an application sends, what the
// browser receives carries no Domain attribute (each cookie stays on the
// instance's origin) and none of ComputeHub's cookie names.
func FuzzAppCookies(f *testing.F) {
	for _, s := range []string{"a=1; Path=/; Domain=.apps.localhost", "chub_csrf=x; Path=/", " chub_session=y", "chub_app_session=z; Domain=localhost",
		"b=2; domain =localhost; Secure", "c=3;DOMAIN=x;HttpOnly", "d", "=e; Domain=x", "x=1\nchub_csrf=2"} {
		f.Add(s, "ok=1")
	}
	f.Fuzz(func(t *testing.T, line1, line2 string) {
		resp := &http.Response{Header: http.Header{}}
		resp.Header.Add("Set-Cookie", line1)
		resp.Header.Add("Set-Cookie", line2)
		if err := appCookies(resp); err != nil {
			t.Fatalf("appCookies: %v", err)
		}
		for _, c := range (&http.Response{Header: resp.Header}).Cookies() {
			if c.Domain != "" || reservedCookie(c.Name) {
				t.Fatalf("from %q, %q the browser gets the cookie %+v", line1, line2, c)
			}
		}
		for _, line := range resp.Header.Values("Set-Cookie") {
			name, _, _ := strings.Cut(strings.Split(line, ";")[0], "=")
			if reservedCookie(strings.TrimSpace(name)) {
				t.Fatalf("from %q, %q: Set-Cookie %q", line1, line2, line)
			}
			for _, a := range strings.Split(line, ";")[1:] {
				k, _, _ := strings.Cut(a, "=")
				if strings.EqualFold(strings.TrimSpace(k), "domain") {
					t.Fatalf("from %q, %q: Set-Cookie %q keeps a Domain", line1, line2, line)
				}
			}
		}
	})
}

// FuzzAppHost: a request's Host names an instance only when it is exactly
// NAME.<apps domain> (any port), and the host the gateway hands out for an
// instance names that instance.
func FuzzAppHost(f *testing.F) {
	for _, s := range []string{"ci1.apps.localhost:8443", "CI1.Apps.Localhost.", "apps.localhost", "a.b.apps.localhost", "evil.com", "ci1.apps.localhost.evil.com",
		"xapps.localhost", "[::1]:8443", ".apps.localhost", "ci1.apps.localhost:"} {
		f.Add(s, "ci1")
	}
	g := &Gateway{cfg: Config{Domain: "apps.localhost", Port: "8443"}}
	f.Fuzz(func(t *testing.T, host, name string) {
		label, ok := g.instanceOf(host)
		if ok {
			h := hostOnly(host)
			if !g.Owns(host) || label == "" || strings.Contains(label, ".") || h != label+".apps.localhost" {
				t.Fatalf("instanceOf(%q) = %q, but the host is %q", host, label, h)
			}
		}
		if g.Owns(host) {
			if h := hostOnly(host); h != "apps.localhost" && !strings.HasSuffix(h, ".apps.localhost") {
				t.Fatalf("Owns(%q), whose host %q is not under the apps domain", host, h)
			}
		}
		if name == "" || strings.ContainsAny(name, ".:[]/ ") || name != strings.TrimSpace(name) {
			return // not a compute name
		}
		if got, ok := g.instanceOf(g.Host(name)); !ok || got != strings.ToLower(name) {
			t.Fatalf("instanceOf(Host(%q) = %q) = %q, %v", name, g.Host(name), got, ok)
		}
	})
}
