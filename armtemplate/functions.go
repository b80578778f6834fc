package armtemplate

import (
	"crypto/sha1"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/bits"
	"reflect"
	"strconv"
	"strings"
)

type function func(sc *scope, args []any) (any, error)

var functions map[string]function

func nargs(args []any, min, max int) error {
	if len(args) < min || max >= 0 && len(args) > max {
		if min == max {
			return fmt.Errorf("takes %d arguments, got %d", min, len(args))
		}
		return fmt.Errorf("takes %d to %d arguments, got %d", min, max, len(args))
	}
	return nil
}

func strArg(args []any, i int) (string, error) {
	s, ok := args[i].(string)
	if !ok {
		return "", fmt.Errorf("argument %d is a %s, not a string", i+1, typeName(args[i]))
	}
	return s, nil
}

func strArgs(args []any) ([]string, error) {
	out := make([]string, len(args))
	for i := range args {
		s, err := strArg(args, i)
		if err != nil {
			return nil, err
		}
		out[i] = s
	}
	return out, nil
}

func init() {
	functions = map[string]function{
		"parameters": func(sc *scope, a []any) (any, error) {
			if err := nargs(a, 1, 1); err != nil {
				return nil, err
			}
			n, err := strArg(a, 0)
			if err != nil {
				return nil, err
			}
			for k, v := range sc.params {
				if strings.EqualFold(k, n) {
					return v, nil
				}
			}
			return nil, fmt.Errorf("the template has no parameter %q", n)
		},
		"variables": func(sc *scope, a []any) (any, error) {
			if err := nargs(a, 1, 1); err != nil {
				return nil, err
			}
			n, err := strArg(a, 0)
			if err != nil {
				return nil, err
			}
			if sc.vars == nil {
				return nil, fmt.Errorf("variables are not available here")
			}
			return sc.vars(n)
		},
		"concat": func(sc *scope, a []any) (any, error) {
			if len(a) > 0 {
				if _, ok := a[0].([]any); ok {
					out := []any{}
					for i, x := range a {
						arr, ok := x.([]any)
						if !ok {
							return nil, fmt.Errorf("argument %d is a %s, not an array", i+1, typeName(x))
						}
						out = append(out, arr...)
					}
					return out, nil
				}
			}
			var b strings.Builder
			for _, x := range a {
				b.WriteString(str(x))
			}
			return b.String(), nil
		},
		"format": func(sc *scope, a []any) (any, error) {
			if err := nargs(a, 1, -1); err != nil {
				return nil, err
			}
			f, err := strArg(a, 0)
			if err != nil {
				return nil, err
			}
			var b strings.Builder
			for i := 0; i < len(f); i++ {
				c := f[i]
				if c == '{' && i+1 < len(f) && f[i+1] == '{' {
					b.WriteByte('{')
					i++
					continue
				}
				if c == '}' && i+1 < len(f) && f[i+1] == '}' {
					b.WriteByte('}')
					i++
					continue
				}
				if c == '{' {
					end := strings.IndexByte(f[i:], '}')
					if end < 0 {
						return nil, fmt.Errorf("unclosed '{' in the format string")
					}
					spec := f[i+1 : i+end]
					if c := strings.IndexAny(spec, ":,"); c >= 0 {
						spec = spec[:c]
					}
					k, err := strconv.Atoi(strings.TrimSpace(spec))
					if err != nil || k < 0 || k+1 >= len(a) {
						return nil, fmt.Errorf("the format item %q has no argument", f[i:i+end+1])
					}
					b.WriteString(str(a[k+1]))
					i += end
					continue
				}
				b.WriteByte(c)
			}
			return b.String(), nil
		},
		"if":  func(sc *scope, a []any) (any, error) { return nil, fmt.Errorf("if is evaluated lazily") },
		"and": func(sc *scope, a []any) (any, error) { return boolFold(a, true) },
		"or":  func(sc *scope, a []any) (any, error) { return boolFold(a, false) },
		"not": func(sc *scope, a []any) (any, error) {
			if err := nargs(a, 1, 1); err != nil {
				return nil, err
			}
			b, ok := a[0].(bool)
			if !ok {
				return nil, fmt.Errorf("argument is a %s, not a bool", typeName(a[0]))
			}
			return !b, nil
		},
		"true":  func(sc *scope, a []any) (any, error) { return true, nargs(a, 0, 0) },
		"false": func(sc *scope, a []any) (any, error) { return false, nargs(a, 0, 0) },
		"null":  func(sc *scope, a []any) (any, error) { return nil, nargs(a, 0, 0) },
		"equals": func(sc *scope, a []any) (any, error) {
			if err := nargs(a, 2, 2); err != nil {
				return nil, err
			}
			return equal(a[0], a[1]), nil
		},
		"empty": func(sc *scope, a []any) (any, error) {
			if err := nargs(a, 1, 1); err != nil {
				return nil, err
			}
			switch x := a[0].(type) {
			case nil:
				return true, nil
			case string:
				return x == "", nil
			case []any:
				return len(x) == 0, nil
			case map[string]any:
				return len(x) == 0, nil
			}
			return false, nil
		},
		"length": func(sc *scope, a []any) (any, error) {
			if err := nargs(a, 1, 1); err != nil {
				return nil, err
			}
			switch x := a[0].(type) {
			case string:
				return int64(len([]rune(x))), nil
			case []any:
				return int64(len(x)), nil
			case map[string]any:
				return int64(len(x)), nil
			}
			return nil, fmt.Errorf("cannot take the length of a %s", typeName(a[0]))
		},
		"json": func(sc *scope, a []any) (any, error) {
			if err := nargs(a, 1, 1); err != nil {
				return nil, err
			}
			s, err := strArg(a, 0)
			if err != nil {
				return nil, err
			}
			return decodeJSON([]byte(s))
		},
		"base64": func(sc *scope, a []any) (any, error) {
			if err := nargs(a, 1, 1); err != nil {
				return nil, err
			}
			s, err := strArg(a, 0)
			if err != nil {
				return nil, err
			}
			return base64.StdEncoding.EncodeToString([]byte(s)), nil
		},
		"base64tostring": func(sc *scope, a []any) (any, error) {
			if err := nargs(a, 1, 1); err != nil {
				return nil, err
			}
			s, err := strArg(a, 0)
			if err != nil {
				return nil, err
			}
			b, err := base64.StdEncoding.DecodeString(s)
			if err != nil {
				return nil, fmt.Errorf("not base64: %w", err)
			}
			return string(b), nil
		},
		"string": func(sc *scope, a []any) (any, error) {
			if err := nargs(a, 1, 1); err != nil {
				return nil, err
			}
			return str(a[0]), nil
		},
		"int": func(sc *scope, a []any) (any, error) {
			if err := nargs(a, 1, 1); err != nil {
				return nil, err
			}
			if i, ok := toInt(a[0]); ok {
				return i, nil
			}
			s, _ := a[0].(string)
			i, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
			if err != nil {
				return nil, fmt.Errorf("%q is not an integer", str(a[0]))
			}
			return i, nil
		},
		"bool": func(sc *scope, a []any) (any, error) {
			if err := nargs(a, 1, 1); err != nil {
				return nil, err
			}
			switch x := a[0].(type) {
			case bool:
				return x, nil
			case string:
				b, err := strconv.ParseBool(strings.ToLower(x))
				if err != nil {
					return nil, fmt.Errorf("%q is not a bool", x)
				}
				return b, nil
			}
			if i, ok := toInt(a[0]); ok {
				return i != 0, nil
			}
			return nil, fmt.Errorf("a %s is not a bool", typeName(a[0]))
		},
		"tolower": strFn(strings.ToLower),
		"toupper": strFn(strings.ToUpper),
		"replace": func(sc *scope, a []any) (any, error) {
			if err := nargs(a, 3, 3); err != nil {
				return nil, err
			}
			s, err := strArgs(a)
			if err != nil {
				return nil, err
			}
			return strings.ReplaceAll(s[0], s[1], s[2]), nil
		},
		"split": func(sc *scope, a []any) (any, error) {
			if err := nargs(a, 2, 2); err != nil {
				return nil, err
			}
			s, err := strArg(a, 0)
			if err != nil {
				return nil, err
			}
			var seps []string
			switch x := a[1].(type) {
			case string:
				seps = []string{x}
			case []any:
				if seps, err = strArgs(x); err != nil {
					return nil, err
				}
			default:
				return nil, fmt.Errorf("the delimiter is a %s", typeName(a[1]))
			}
			parts := []string{s}
			for _, sep := range seps {
				if sep == "" {
					continue
				}
				var next []string
				for _, p := range parts {
					next = append(next, strings.Split(p, sep)...)
				}
				parts = next
			}
			out := make([]any, len(parts))
			for i, p := range parts {
				out[i] = p
			}
			return out, nil
		},
		"contains": func(sc *scope, a []any) (any, error) {
			if err := nargs(a, 2, 2); err != nil {
				return nil, err
			}
			switch x := a[0].(type) {
			case string:
				return strings.Contains(strings.ToLower(x), strings.ToLower(str(a[1]))), nil
			case []any:
				for _, e := range x {
					if equal(e, a[1]) {
						return true, nil
					}
				}
				return false, nil
			case map[string]any:
				k := str(a[1])
				for kk := range x {
					if strings.EqualFold(kk, k) {
						return true, nil
					}
				}
				return false, nil
			}
			return nil, fmt.Errorf("cannot search a %s", typeName(a[0]))
		},
		"union": func(sc *scope, a []any) (any, error) {
			if err := nargs(a, 1, -1); err != nil {
				return nil, err
			}
			if _, ok := a[0].([]any); ok {
				out := []any{}
				for i, x := range a {
					arr, ok := x.([]any)
					if !ok {
						return nil, fmt.Errorf("argument %d is a %s, not an array", i+1, typeName(x))
					}
				next:
					for _, e := range arr {
						for _, o := range out {
							if equal(o, e) {
								continue next
							}
						}
						out = append(out, e)
					}
				}
				return out, nil
			}
			out := map[string]any{}
			for i, x := range a {
				m, ok := x.(map[string]any)
				if !ok {
					return nil, fmt.Errorf("argument %d is a %s, not an object", i+1, typeName(x))
				}
				for k, v := range m {
					out[k] = v
				}
			}
			return out, nil
		},
		"coalesce": func(sc *scope, a []any) (any, error) {
			for _, x := range a {
				if x != nil {
					return x, nil
				}
			}
			return nil, nil
		},
		"resourcegroup": func(sc *scope, a []any) (any, error) {
			if err := nargs(a, 0, 0); err != nil {
				return nil, err
			}
			return map[string]any{
				"id":         "/subscriptions/" + sc.d.Subscription + "/resourceGroups/" + sc.d.ResourceGroup,
				"name":       sc.d.ResourceGroup,
				"type":       "Microsoft.Resources/resourceGroups",
				"location":   sc.d.Location,
				"properties": map[string]any{"provisioningState": "Succeeded"},
			}, nil
		},
		"subscription": func(sc *scope, a []any) (any, error) {
			if err := nargs(a, 0, 0); err != nil {
				return nil, err
			}
			return map[string]any{
				"id":             "/subscriptions/" + sc.d.Subscription,
				"subscriptionId": sc.d.Subscription,
				"tenantId":       sc.d.TenantID,
				"displayName":    sc.d.Subscription,
			}, nil
		},
		"deployment": func(sc *scope, a []any) (any, error) {
			if err := nargs(a, 0, 0); err != nil {
				return nil, err
			}
			props := map[string]any{}
			if sc.d.TemplateLink != "" {
				props["templateLink"] = map[string]any{"uri": sc.d.TemplateLink}
			}
			return map[string]any{"name": sc.d.Name, "properties": props}, nil
		},
		"resourceid": func(sc *scope, a []any) (any, error) {
			s, err := strArgs(a)
			if err != nil {
				return nil, err
			}
			return resourceID(sc.d, s)
		},
		"utcnow": func(sc *scope, a []any) (any, error) {
			if !sc.inDefaults {
				return nil, fmt.Errorf("utcNow may be used only in a parameter's defaultValue")
			}
			if err := nargs(a, 0, 1); err != nil {
				return nil, err
			}
			f := "yyyyMMddTHHmmssZ"
			if len(a) == 1 {
				var err error
				if f, err = strArg(a, 0); err != nil {
					return nil, err
				}
			}
			return dotnetTime(sc, f), nil
		},
		"uniquestring": func(sc *scope, a []any) (any, error) {
			if err := nargs(a, 1, -1); err != nil {
				return nil, err
			}
			s, err := strArgs(a)
			if err != nil {
				return nil, err
			}
			return uniqueString(strings.Join(s, "-")), nil
		},
		"guid": func(sc *scope, a []any) (any, error) {
			if err := nargs(a, 1, -1); err != nil {
				return nil, err
			}
			s, err := strArgs(a)
			if err != nil {
				return nil, err
			}
			return guid(strings.Join(s, "-")), nil
		},
		"copyindex": func(sc *scope, a []any) (any, error) {
			if err := nargs(a, 0, 2); err != nil {
				return nil, err
			}
			loop, off := sc.curLoop, int64(0)
			for _, x := range a {
				if s, ok := x.(string); ok {
					loop = s
				} else if i, ok := toInt(x); ok {
					off = i
				}
			}
			i, ok := sc.copyIndex[strings.ToLower(loop)]
			if !ok {
				return nil, fmt.Errorf("copyIndex is used outside the copy loop %q", loop)
			}
			return int64(i) + off, nil
		},
		"reference": func(sc *scope, a []any) (any, error) {
			if err := nargs(a, 1, 3); err != nil {
				return nil, err
			}
			s, err := strArgs(a)
			if err != nil {
				return nil, err
			}
			if sc.ref == nil {
				return nil, fmt.Errorf("reference() is not available here")
			}
			id := s[0]
			if !strings.HasPrefix(id, "/") {
				id = sc.resolveRef(id)
			}
			api := ""
			if len(s) > 1 {
				api = s[1]
			}
			return sc.ref(id, api, len(s) > 2 && strings.EqualFold(s[2], "full"))
		},
	}
}

func strFn(f func(string) string) function {
	return func(sc *scope, a []any) (any, error) {
		if err := nargs(a, 1, 1); err != nil {
			return nil, err
		}
		s, err := strArg(a, 0)
		if err != nil {
			return nil, err
		}
		return f(s), nil
	}
}

func boolFold(a []any, and bool) (any, error) {
	if err := nargs(a, 2, -1); err != nil {
		return nil, err
	}
	r := and
	for i, x := range a {
		b, ok := x.(bool)
		if !ok {
			return nil, fmt.Errorf("argument %d is a %s, not a bool", i+1, typeName(x))
		}
		if and {
			r = r && b
		} else {
			r = r || b
		}
	}
	return r, nil
}

func equal(a, b any) bool {
	if x, ok := toInt(a); ok {
		y, ok := toInt(b)
		return ok && x == y
	}
	na, _ := json.Marshal(a)
	nb, _ := json.Marshal(b)
	if reflect.TypeOf(a) != reflect.TypeOf(b) {
		return false
	}
	return string(na) == string(nb)
}

// decodeJSON decodes with integers as int64.
func decodeJSON(b []byte) (any, error) {
	d := json.NewDecoder(strings.NewReader(string(b)))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, fmt.Errorf("not JSON: %w", err)
	}
	if d.More() {
		return nil, fmt.Errorf("not JSON: data after the value")
	}
	return normalize(v), nil
}

func normalize(v any) any {
	switch x := v.(type) {
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i
		}
		f, _ := x.Float64()
		return f
	case map[string]any:
		for k, e := range x {
			x[k] = normalize(e)
		}
	case []any:
		for i, e := range x {
			x[i] = normalize(e)
		}
	}
	return v
}

// resourceID implements resourceId([subscriptionId], [resourceGroupName], type, names...).
func resourceID(d Deployment, s []string) (string, error) {
	ti := -1
	for i, x := range s {
		if strings.Contains(x, "/") && i <= 2 {
			ti = i
			break
		}
	}
	if ti < 0 {
		return "", fmt.Errorf("no resource type (NS/type) among the arguments")
	}
	sub, rg := d.Subscription, d.ResourceGroup
	switch ti {
	case 1:
		if s[0] != "" {
			rg = s[0]
		}
	case 2:
		sub, rg = s[0], s[1]
	}
	types := strings.Split(s[ti], "/")
	names := s[ti+1:]
	if len(types)-1 != len(names) {
		return "", fmt.Errorf("the type %q needs %d name segments, got %d", s[ti], len(types)-1, len(names))
	}
	var b strings.Builder
	b.WriteString("/subscriptions/" + sub + "/resourceGroups/" + rg + "/providers/" + types[0])
	for i, n := range names {
		b.WriteString("/" + types[i+1] + "/" + n)
	}
	return b.String(), nil
}

func dotnetTime(sc *scope, f string) string {
	r := strings.NewReplacer("yyyy", "2006", "MM", "01", "dd", "02", "HH", "15", "mm", "04", "ss", "05", "T", "T", "Z", "Z")
	return sc.d.Now.UTC().Format(r.Replace(f))
}

// uniqueString is ARM's: MurmurHash64 (Microsoft's variant) of the UTF-8
// text, 13 base32 characters from the high bits.
func uniqueString(s string) string {
	h := murmur64([]byte(s))
	const cs = "abcdefghijklmnopqrstuvwxyz234567"
	var b [13]byte
	for i := range b {
		b[i] = cs[h>>59]
		h <<= 5
	}
	return string(b[:])
}

func murmur64(data []byte) uint64 {
	const c1, c2 = uint32(0x239b961b), uint32(0xab0e9789)
	var h1, h2 uint32
	n := len(data)
	i := 0
	le := func(b []byte) uint32 {
		var v uint32
		for j := len(b) - 1; j >= 0; j-- {
			v = v<<8 | uint32(b[j])
		}
		return v
	}
	for ; i+7 < n; i += 8 {
		k1, k2 := le(data[i:i+4]), le(data[i+4:i+8])
		k1 *= c1
		k1 = bits.RotateLeft32(k1, 15)
		k1 *= c2
		h1 ^= k1
		h1 = bits.RotateLeft32(h1, 19)
		h1 += h2
		h1 = h1*5 + 0x561ccd1b
		k2 *= c2
		k2 = bits.RotateLeft32(k2, 17)
		k2 *= c1
		h2 ^= k2
		h2 = bits.RotateLeft32(h2, 13)
		h2 += h1
		h2 = h2*5 + 0x0bcaa747
	}
	if tail := n - i; tail > 0 {
		k1 := le(data[i:min(i+4, n)])
		k1 *= c1
		k1 = bits.RotateLeft32(k1, 15)
		k1 *= c2
		h1 ^= k1
		if tail > 4 {
			k2 := le(data[i+4 : n])
			k2 *= c2
			k2 = bits.RotateLeft32(k2, 17)
			k2 *= c1
			h2 ^= k2
		}
	}
	h1 ^= uint32(n)
	h2 ^= uint32(n)
	h1 += h2
	h2 += h1
	h1, h2 = fmix(h1), fmix(h2)
	h1 += h2
	h2 += h1
	return uint64(h2)<<32 | uint64(h1)
}

func fmix(h uint32) uint32 {
	h ^= h >> 16
	h *= 0x85ebca6b
	h ^= h >> 13
	h *= 0xc2b2ae35
	h ^= h >> 16
	return h
}

// guid is ARM's guid(): a name-based (SHA-1, version 5) UUID of the UTF-8
// text in ARM's namespace 11fb06fb-712d-4ddd-98c7-e71bbd588830.
func guid(s string) string {
	ns := []byte{0x11, 0xfb, 0x06, 0xfb, 0x71, 0x2d, 0x4d, 0xdd, 0x98, 0xc7, 0xe7, 0x1b, 0xbd, 0x58, 0x88, 0x30}
	h := sha1.New()
	h.Write(ns)
	h.Write([]byte(s))
	u := h.Sum(nil)[:16]
	u[6] = u[6]&0x0f | 0x50
	u[8] = u[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}
