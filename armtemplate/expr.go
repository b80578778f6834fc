package armtemplate

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/computehub/chub"
)

// node is a parsed expression.
type node struct {
	kind  byte // 's' string, 'i' int, 'c' call, 'p' property, 'x' index
	str   string
	num   int64
	args  []*node
	inner *node
}

type parser struct {
	src string
	pos int
}

// parseExpr parses the inside of a "[...]" string.
func parseExpr(src string) (*node, error) {
	p := &parser{src: src}
	n, err := p.expr()
	if err != nil {
		return nil, err
	}
	p.ws()
	if p.pos != len(p.src) {
		return nil, fmt.Errorf("unexpected %q at offset %d", p.src[p.pos:], p.pos)
	}
	return n, nil
}

func (p *parser) ws() {
	for p.pos < len(p.src) && (p.src[p.pos] == ' ' || p.src[p.pos] == '\t' || p.src[p.pos] == '\n' || p.src[p.pos] == '\r') {
		p.pos++
	}
}

func isIdent(c byte, first bool) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || !first && (c >= '0' && c <= '9' || c == '.' && false)
}

func (p *parser) expr() (*node, error) {
	p.ws()
	if p.pos >= len(p.src) {
		return nil, fmt.Errorf("expression ends where a value was expected")
	}
	var n *node
	c := p.src[p.pos]
	switch {
	case c == '\'':
		p.pos++
		var b strings.Builder
		for {
			if p.pos >= len(p.src) {
				return nil, fmt.Errorf("unterminated string literal")
			}
			if p.src[p.pos] == '\'' {
				if p.pos+1 < len(p.src) && p.src[p.pos+1] == '\'' {
					b.WriteByte('\'')
					p.pos += 2
					continue
				}
				p.pos++
				break
			}
			b.WriteByte(p.src[p.pos])
			p.pos++
		}
		n = &node{kind: 's', str: b.String()}
	case c == '-' || c >= '0' && c <= '9':
		start := p.pos
		p.pos++
		for p.pos < len(p.src) && p.src[p.pos] >= '0' && p.src[p.pos] <= '9' {
			p.pos++
		}
		v, err := strconv.ParseInt(p.src[start:p.pos], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("bad integer %q", p.src[start:p.pos])
		}
		n = &node{kind: 'i', num: v}
	case isIdent(c, true):
		start := p.pos
		for p.pos < len(p.src) && isIdent(p.src[p.pos], false) {
			p.pos++
		}
		name := p.src[start:p.pos]
		p.ws()
		if p.pos >= len(p.src) || p.src[p.pos] != '(' {
			return nil, fmt.Errorf("%q must be followed by '(' (a function call)", name)
		}
		p.pos++
		n = &node{kind: 'c', str: name}
		p.ws()
		if p.pos < len(p.src) && p.src[p.pos] == ')' {
			p.pos++
		} else {
			for {
				a, err := p.expr()
				if err != nil {
					return nil, err
				}
				n.args = append(n.args, a)
				p.ws()
				if p.pos >= len(p.src) {
					return nil, fmt.Errorf("missing ')' after the arguments of %s", name)
				}
				if p.src[p.pos] == ',' {
					p.pos++
					continue
				}
				if p.src[p.pos] == ')' {
					p.pos++
					break
				}
				return nil, fmt.Errorf("unexpected %q in the arguments of %s", p.src[p.pos:p.pos+1], name)
			}
		}
	default:
		return nil, fmt.Errorf("unexpected %q at offset %d", string(c), p.pos)
	}
	for {
		p.ws()
		if p.pos >= len(p.src) {
			return n, nil
		}
		switch p.src[p.pos] {
		case '.':
			p.pos++
			p.ws()
			start := p.pos
			for p.pos < len(p.src) && (isIdent(p.src[p.pos], false) || p.src[p.pos] == '$') {
				p.pos++
			}
			if start == p.pos {
				return nil, fmt.Errorf("a property name must follow '.'")
			}
			n = &node{kind: 'p', str: p.src[start:p.pos], inner: n}
		case '[':
			p.pos++
			idx, err := p.expr()
			if err != nil {
				return nil, err
			}
			p.ws()
			if p.pos >= len(p.src) || p.src[p.pos] != ']' {
				return nil, fmt.Errorf("missing ']'")
			}
			p.pos++
			n = &node{kind: 'x', args: []*node{idx}, inner: n}
		default:
			return n, nil
		}
	}
}

// scope is what expressions evaluate against.
type scope struct {
	d          Deployment
	params     map[string]any
	vars       func(name string) (any, error)
	ref        Referencer
	copyIndex  map[string]int
	curLoop    string
	inDefaults bool
	plan       *Plan
}

// isExpr reports whether s is an expression and returns its inside.
func isExpr(s string) (string, bool) {
	if len(s) >= 2 && s[0] == '[' && s[len(s)-1] == ']' && !strings.HasPrefix(s, "[[") {
		return s[1 : len(s)-1], true
	}
	return "", false
}

// evalString evaluates a template string value at path.
func (sc *scope) evalString(s, path string) (any, error) {
	in, ok := isExpr(s)
	if !ok {
		if strings.HasPrefix(s, "[[") {
			return s[1:], nil
		}
		return s, nil
	}
	n, err := parseExpr(in)
	if err != nil {
		return nil, chub.Invalid("InvalidTemplate", path, "the expression %q is malformed: %v", s, err)
	}
	v, err := sc.eval(n)
	if err != nil {
		return nil, chub.Invalid("InvalidTemplate", path, "the expression %q failed: %v", s, err)
	}
	return v, nil
}

// evalValue evaluates every string in a JSON value; nil results drop members.
func (sc *scope) evalValue(v any, path string) (any, error) {
	switch x := v.(type) {
	case string:
		return sc.evalString(x, path)
	case map[string]any:
		out := map[string]any{}
		for k, e := range x {
			r, err := sc.evalValue(e, path+"."+k)
			if err != nil {
				return nil, err
			}
			if r != nil {
				out[k] = r
			}
		}
		return out, nil
	case []any:
		out := make([]any, 0, len(x))
		for i, e := range x {
			r, err := sc.evalValue(e, fmt.Sprintf("%s[%d]", path, i))
			if err != nil {
				return nil, err
			}
			out = append(out, r)
		}
		return out, nil
	}
	return v, nil
}

func (sc *scope) eval(n *node) (any, error) {
	switch n.kind {
	case 's':
		return n.str, nil
	case 'i':
		return n.num, nil
	case 'p':
		v, err := sc.eval(n.inner)
		if err != nil {
			return nil, err
		}
		m, ok := v.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("cannot read property %q of a %s", n.str, typeName(v))
		}
		for k, e := range m {
			if strings.EqualFold(k, n.str) {
				return e, nil
			}
		}
		return nil, fmt.Errorf("the object has no property %q", n.str)
	case 'x':
		v, err := sc.eval(n.inner)
		if err != nil {
			return nil, err
		}
		i, err := sc.eval(n.args[0])
		if err != nil {
			return nil, err
		}
		switch c := v.(type) {
		case []any:
			k, ok := toInt(i)
			if !ok || k < 0 || k >= int64(len(c)) {
				return nil, fmt.Errorf("index %v is out of range of an array of %d", i, len(c))
			}
			return c[k], nil
		case map[string]any:
			s, ok := i.(string)
			if !ok {
				return nil, fmt.Errorf("an object is indexed by a string, not %s", typeName(i))
			}
			for k, e := range c {
				if strings.EqualFold(k, s) {
					return e, nil
				}
			}
			return nil, fmt.Errorf("the object has no property %q", s)
		}
		return nil, fmt.Errorf("cannot index a %s", typeName(v))
	case 'c':
		f, ok := functions[strings.ToLower(n.str)]
		if !ok {
			return nil, fmt.Errorf("unknown function %q", n.str)
		}
		args := make([]any, len(n.args))
		for i, a := range n.args {
			if strings.EqualFold(n.str, "if") && i > 0 {
				break // lazy branches
			}
			v, err := sc.eval(a)
			if err != nil {
				return nil, err
			}
			args[i] = v
		}
		if strings.EqualFold(n.str, "if") {
			if len(n.args) != 3 {
				return nil, fmt.Errorf("if takes 3 arguments, got %d", len(n.args))
			}
			b, ok := args[0].(bool)
			if !ok {
				return nil, fmt.Errorf("if's condition is a %s, not a bool", typeName(args[0]))
			}
			if b {
				return sc.eval(n.args[1])
			}
			return sc.eval(n.args[2])
		}
		v, err := f(sc, args)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", n.str, err)
		}
		return v, nil
	}
	return nil, fmt.Errorf("bad expression node")
}

func toInt(v any) (int64, bool) {
	switch x := v.(type) {
	case int64:
		return x, true
	case int:
		return int64(x), true
	case float64:
		if x == float64(int64(x)) {
			return int64(x), true
		}
	case json.Number:
		i, err := x.Int64()
		return i, err == nil
	}
	return 0, false
}

func typeName(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "string"
	case bool:
		return "bool"
	case map[string]any:
		return "object"
	case []any:
		return "array"
	}
	if _, ok := toInt(v); ok {
		return "int"
	}
	return fmt.Sprintf("%T", v)
}

func str(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case nil:
		return ""
	case bool:
		return strconv.FormatBool(x)
	}
	if i, ok := toInt(v); ok {
		return strconv.FormatInt(i, 10)
	}
	b, _ := json.Marshal(v)
	return string(b)
}

var _ = base64.StdEncoding
