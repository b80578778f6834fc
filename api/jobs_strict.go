package api

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"sort"
	"strings"

	"github.com/computehub/chub"
)

// jsonObject is one JSON object of a request body, read strictly: every
// key must be one the handler knows (compared case-insensitively, as
// encoding/json does), each value is type-checked when it is taken, and
// every error names the field by its path (properties.limits.timeout).
type jsonObject struct {
	path   string
	fields map[string]json.RawMessage // by lower-cased key
	names  map[string]string          // lower-cased key → as sent
}

// parseObject reads raw as an object; null or absent gives a nil object
// (every lookup on it answers "absent").
func parseObject(raw json.RawMessage, path string) (*jsonObject, error) {
	if isNull(raw) {
		return nil, nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, typeError(path, "an object", raw)
	}
	o := &jsonObject{path: path, fields: map[string]json.RawMessage{}, names: map[string]string{}}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		lk := strings.ToLower(k)
		if prev, dup := o.names[lk]; dup {
			return nil, chub.Invalid("InvalidRequestContent", o.at(k), "the fields %q and %q are the same field spelled twice; send it once", prev, k)
		}
		o.fields[lk], o.names[lk] = m[k], k
	}
	return o, nil
}

// parseBody reads a whole request body as an object.
func parseBody(body []byte) (*jsonObject, error) {
	if err := checkJSON(body); err != nil {
		return nil, err
	}
	if t := bytes.TrimSpace(body); len(t) == 0 || t[0] != '{' {
		return nil, chub.Invalid("InvalidRequestContent", "", "the request body must be a JSON object ({...})")
	}
	return parseObject(body, "")
}

// checkJSON reports invalid JSON with the offset, like decode does.
func checkJSON(body []byte) error {
	var v any
	return decodeJSON(body, &v)
}

func isNull(raw json.RawMessage) bool {
	t := bytes.TrimSpace(raw)
	return len(t) == 0 || string(t) == "null"
}

// at is the path of key k of o.
func (o *jsonObject) at(k string) string {
	if o == nil || o.path == "" {
		return k
	}
	return o.path + "." + k
}

// allow refuses every key that is not in allowed.
func (o *jsonObject) allow(allowed ...string) error {
	if o == nil {
		return nil
	}
	ok := map[string]bool{}
	for _, a := range allowed {
		ok[strings.ToLower(a)] = true
	}
	var unknown []string
	for lk, name := range o.names {
		if !ok[lk] {
			unknown = append(unknown, name)
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	sort.Strings(unknown)
	where := "the request body"
	if o.path != "" {
		where = o.path
	}
	return chub.Invalid("UnknownProperty", o.at(unknown[0]),
		"%s has no field %q; the fields it takes are %s (remove %q)", where, unknown[0], strings.Join(allowed, ", "), unknown[0])
}

// has reports whether key is present and not null.
func (o *jsonObject) has(key string) bool {
	if o == nil {
		return false
	}
	raw, ok := o.fields[strings.ToLower(key)]
	return ok && !isNull(raw)
}

func (o *jsonObject) raw(key string) json.RawMessage {
	if o == nil {
		return nil
	}
	return o.fields[strings.ToLower(key)]
}

// refuse refuses each key when it is set (not null) with the reason given.
func (o *jsonObject) refuse(why string, keys ...string) error {
	for _, k := range keys {
		if o.has(k) {
			return chub.Invalid("UnsupportedProperty", o.at(k), "%s is not supported: %s; remove it or set it to null", o.at(k), why)
		}
	}
	return nil
}

// str is a string field; absent or null is "".
func (o *jsonObject) str(key string) (string, error) {
	if !o.has(key) {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(o.raw(key), &s); err != nil {
		return "", typeError(o.at(key), "a string", o.raw(key))
	}
	return s, nil
}

// boolean is a boolean field; nil when absent or null.
func (o *jsonObject) boolean(key string) (*bool, error) {
	if !o.has(key) {
		return nil, nil
	}
	var b bool
	if err := json.Unmarshal(o.raw(key), &b); err != nil {
		return nil, typeError(o.at(key), "true or false", o.raw(key))
	}
	return &b, nil
}

// number is an integer field; nil when absent or null.
func (o *jsonObject) integer(key string) (*int64, error) {
	if !o.has(key) {
		return nil, nil
	}
	var f float64
	if err := json.Unmarshal(o.raw(key), &f); err != nil || f != float64(int64(f)) || f > 1<<53 || f < -(1<<53) {
		return nil, typeError(o.at(key), "an integer", o.raw(key))
	}
	n := int64(f)
	return &n, nil
}

// strMap is an object of strings (tags, properties, environmentVariables);
// nil when absent or null.
func (o *jsonObject) strMap(key string) (map[string]string, error) {
	if !o.has(key) {
		return nil, nil
	}
	var m map[string]*string
	if err := json.Unmarshal(o.raw(key), &m); err != nil {
		return nil, typeError(o.at(key), "an object of strings", o.raw(key))
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		if v == nil {
			return nil, chub.Invalid("InvalidRequestContent", o.at(key)+"."+k, "the value of %s.%s must be a string, not null", o.at(key), k)
		}
		out[k] = *v
	}
	return out, nil
}

// obj is an object field; nil when absent or null.
func (o *jsonObject) obj(key string) (*jsonObject, error) {
	if !o.has(key) {
		return nil, nil
	}
	return parseObject(o.raw(key), o.at(key))
}

// objMap is an object of objects (inputs, outputs, services), by key as sent.
func (o *jsonObject) objMap(key string) (map[string]*jsonObject, error) {
	sub, err := o.obj(key)
	if err != nil || sub == nil {
		return nil, err
	}
	out := map[string]*jsonObject{}
	for lk, name := range sub.names {
		v, err := parseObject(sub.fields[lk], sub.at(name))
		if err != nil {
			return nil, err
		}
		out[name] = v
	}
	return out, nil
}

func typeError(path, want string, raw json.RawMessage) error {
	got := "something else"
	switch t := bytes.TrimSpace(raw); {
	case len(t) == 0:
	case t[0] == '"':
		got = "a string"
	case t[0] == '{':
		got = "an object"
	case t[0] == '[':
		got = "an array"
	case t[0] == 't' || t[0] == 'f':
		got = "a boolean"
	case t[0] == 'n':
		got = "null"
	default:
		got = "a number"
	}
	if path == "" {
		return chub.Invalid("InvalidRequestContent", "", "the request body must be %s, not %s", want, got)
	}
	return chub.Invalid("InvalidRequestContent", path, "the value of '%s' must be %s, not %s", path, want, got)
}

// readBody reads a JSON request body under the API's limit; an empty body
// is nil.
func readBody(r *http.Request) ([]byte, error) {
	if r.ContentLength > maxBody {
		return nil, tooLarge()
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return nil, chub.Invalid("InvalidRequestContent", "", "reading the request body failed: %v", err)
	}
	if len(body) > maxBody {
		return nil, tooLarge()
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, nil
	}
	return body, nil
}

// resourceBase decodes and checks the fields every job and asset version
// has: description, tags, properties and isArchived.
func (o *jsonObject) resourceBase() (description string, tags, properties map[string]string, isArchived *bool, err error) {
	if description, err = o.str("description"); err != nil {
		return
	}
	if err = chub.ValidateDescription(description, "properties.description"); err != nil {
		return
	}
	if tags, err = o.strMap("tags"); err != nil {
		return
	}
	if err = chub.ValidateTags(tags); err != nil {
		err = retarget(err, "properties.")
		return
	}
	if properties, err = o.strMap("properties"); err != nil {
		return
	}
	if err = checkProperties(properties, "properties.properties"); err != nil {
		return
	}
	isArchived, err = o.boolean("isArchived")
	return
}
