package armtemplate

import (
	"fmt"
	"sort"
	"strings"

	"github.com/computehub/chub"
)

func invalid(path, f string, a ...any) error { return chub.Invalid("InvalidTemplate", path, f, a...) }

func parseTemplate(raw []byte) (*Template, error) {
	v, err := decodeJSON(raw)
	if err != nil {
		return nil, invalid("", "the template is not JSON: %v", err)
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, invalid("", "the template is a %s, not an object", typeName(v))
	}
	t := &Template{raw: m}
	t.ContentVersion, _ = m["contentVersion"].(string)
	for _, k := range []string{"parameters", "variables", "outputs"} {
		if x, ok := m[k]; ok {
			if _, ok := x.(map[string]any); !ok {
				return nil, invalid(k, "%s must be an object", k)
			}
		}
	}
	if x, ok := m["resources"]; ok {
		if _, ok := x.([]any); !ok {
			return nil, invalid("resources", "resources must be an array")
		}
	}
	return t, nil
}

var typeNames = map[string]string{"string": "String", "int": "Int", "bool": "Bool", "object": "Object", "array": "Array", "securestring": "SecureString", "secureobject": "SecureObject"}

func checkType(t string, v any) bool {
	switch t {
	case "string", "securestring":
		_, ok := v.(string)
		return ok
	case "int":
		_, ok := toInt(v)
		return ok
	case "bool":
		_, ok := v.(bool)
		return ok
	case "object", "secureobject":
		_, ok := v.(map[string]any)
		return ok
	case "array":
		_, ok := v.([]any)
		return ok
	}
	return false
}

func (t *Template) plan(d Deployment, given map[string]any) (*Plan, error) {
	decl, _ := t.raw["parameters"].(map[string]any)
	given = normalize(copyJSON(given)).(map[string]any)
	for k := range given {
		found := false
		for n := range decl {
			found = found || strings.EqualFold(n, k)
		}
		if !found {
			return nil, chub.Invalid("InvalidTemplateParameter", "parameters."+k, "the template has no parameter %q; remove it", k)
		}
	}
	p := &Plan{Parameters: map[string]ParameterValue{}, t: t, d: d}
	vals := map[string]any{}
	sc := &scope{d: d, params: vals, inDefaults: true}
	names := make([]string, 0, len(decl))
	for n := range decl {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		path := "parameters." + n
		pd, ok := decl[n].(map[string]any)
		if !ok {
			return nil, invalid(path, "a parameter's declaration must be an object")
		}
		ty, _ := pd["type"].(string)
		ty = strings.ToLower(ty)
		if typeNames[ty] == "" {
			return nil, invalid(path+".type", "the parameter type %q is not one of string, int, bool, object, array, securestring, secureobject", pd["type"])
		}
		var v any
		have := false
		for k, x := range given {
			if strings.EqualFold(k, n) {
				v, have = x, true
			}
		}
		if !have {
			dv, ok := pd["defaultValue"]
			if !ok {
				return nil, chub.Invalid("MissingRequiredParameter", path, "the parameter %q has no value and no default; give it a value", n)
			}
			var err error
			if v, err = sc.evalValue(dv, path+".defaultValue"); err != nil {
				return nil, err
			}
		}
		if !checkType(ty, v) {
			return nil, chub.Invalid("InvalidTemplateParameter", path, "the parameter %q is declared %s but its value is a %s", n, ty, typeName(v))
		}
		if av, ok := pd["allowedValues"].([]any); ok {
			okv := false
			for _, a := range av {
				okv = okv || equal(a, v)
			}
			if !okv {
				return nil, chub.Invalid("InvalidTemplateParameter", path, "the value %s of parameter %q is not one of its allowedValues %s", str(v), n, str(av))
			}
		}
		if i, ok := toInt(v); ok {
			if mn, ok := toInt(pd["minValue"]); ok && i < mn {
				return nil, chub.Invalid("InvalidTemplateParameter", path, "the parameter %q is %d, under its minValue %d", n, i, mn)
			}
			if mx, ok := toInt(pd["maxValue"]); ok && i > mx {
				return nil, chub.Invalid("InvalidTemplateParameter", path, "the parameter %q is %d, over its maxValue %d", n, i, mx)
			}
		}
		l := -1
		switch x := v.(type) {
		case string:
			l = len([]rune(x))
		case []any:
			l = len(x)
		}
		if l >= 0 {
			if mn, ok := toInt(pd["minLength"]); ok && int64(l) < mn {
				return nil, chub.Invalid("InvalidTemplateParameter", path, "the parameter %q has length %d, under its minLength %d", n, l, mn)
			}
			if mx, ok := toInt(pd["maxLength"]); ok && int64(l) > mx {
				return nil, chub.Invalid("InvalidTemplateParameter", path, "the parameter %q has length %d, over its maxLength %d", n, l, mx)
			}
		}
		vals[n] = v
		p.Parameters[n] = ParameterValue{Type: typeNames[ty], Value: v}
	}
	p.params = vals
	p.varCache = map[string]any{}
	p.varBusy = map[string]bool{}
	res, _ := t.raw["resources"].([]any)
	if err := p.expand(res, "resources", "", "", nil); err != nil {
		return nil, err
	}
	if err := p.order(); err != nil {
		return nil, err
	}
	return p, nil
}

func copyJSON(m map[string]any) any {
	out := map[string]any{}
	for k, v := range m {
		out[k] = v
	}
	return out
}

// scope returns the evaluation scope for resources.
func (p *Plan) scope(ref Referencer) *scope {
	sc := &scope{d: p.d, params: p.params, ref: ref, copyIndex: map[string]int{}, plan: p}
	sc.vars = func(n string) (any, error) {
		vs, _ := p.t.raw["variables"].(map[string]any)
		for k, v := range vs {
			if !strings.EqualFold(k, n) {
				continue
			}
			if c, ok := p.varCache[strings.ToLower(k)]; ok {
				return c, nil
			}
			if p.varBusy[strings.ToLower(k)] {
				return nil, fmt.Errorf("the variable %q refers to itself", k)
			}
			p.varBusy[strings.ToLower(k)] = true
			vsc := &scope{d: p.d, params: p.params, vars: sc.vars}
			r, err := vsc.evalValue(v, "variables."+k)
			p.varBusy[strings.ToLower(k)] = false
			if err != nil {
				return nil, err
			}
			p.varCache[strings.ToLower(k)] = r
			return r, nil
		}
		return nil, fmt.Errorf("the template has no variable %q", n)
	}
	return sc
}

type tmplRes struct {
	body     map[string]any
	copyName string
}

func (p *Plan) expand(list []any, path, parentType, parentName string, parentIdx map[string]int) error {
	for i, x := range list {
		rp := fmt.Sprintf("%s[%d]", path, i)
		body, ok := x.(map[string]any)
		if !ok {
			return invalid(rp, "a resource must be an object")
		}
		count, loop := 1, ""
		if c, ok := body["copy"].(map[string]any); ok {
			loop, _ = c["name"].(string)
			if loop == "" {
				return invalid(rp+".copy.name", "a copy loop needs a name")
			}
			sc := p.scope(nil)
			cv, err := sc.evalValue(c["count"], rp+".copy.count")
			if err != nil {
				return err
			}
			n, ok := toInt(cv)
			if !ok || n < 0 || n > 800 {
				return invalid(rp+".copy.count", "the copy count must be an integer from 0 to 800, not %s", str(cv))
			}
			count = int(n)
		}
		for it := 0; it < count; it++ {
			ip := rp
			if loop != "" {
				ip = fmt.Sprintf("%s[%d]", rp, it)
			}
			sc := p.scope(nil)
			for k, v := range parentIdx {
				sc.copyIndex[k] = v
			}
			if loop != "" {
				sc.copyIndex[strings.ToLower(loop)] = it
				sc.copyIndex[""] = it
			}
			if c, ok := body["condition"]; ok {
				cv, err := sc.evalValue(c, ip+".condition")
				if err != nil {
					return err
				}
				b, ok := cv.(bool)
				if !ok {
					return invalid(ip+".condition", "the condition is a %s, not a bool", typeName(cv))
				}
				if !b {
					continue
				}
			}
			get := func(k string) (string, error) {
				v, err := sc.evalValue(body[k], ip+"."+k)
				if err != nil {
					return "", err
				}
				s, ok := v.(string)
				if !ok || s == "" {
					return "", invalid(ip+"."+k, "the resource's %s must be a non-empty string", k)
				}
				return s, nil
			}
			ty, err := get("type")
			if err != nil {
				return err
			}
			name, err := get("name")
			if err != nil {
				return err
			}
			api, _ := body["apiVersion"].(string)
			if parentType != "" && !strings.Contains(ty, "/") {
				ty, name = parentType+"/"+ty, parentName+"/"+name
			}
			types := strings.Split(ty, "/")
			names := strings.Split(name, "/")
			if len(types) < 2 || len(types)-1 != len(names) {
				return invalid(ip+".name", "the type %q needs %d name segments, the name %q has %d", ty, len(types)-1, name, len(names))
			}
			r := &Resource{Path: ip, Type: ty, APIVersion: api, Name: name, iter: it, index: len(p.bodies)}
			args := append([]string{ty}, names...)
			r.ID, err = resourceID(p.d, args)
			if err != nil {
				return invalid(ip, "%v", err)
			}
			if s, ok := body["scope"]; ok {
				sv, err := sc.evalValue(s, ip+".scope")
				if err != nil {
					return err
				}
				r.Scope = str(sv)
				r.ID = strings.TrimRight(r.Scope, "/") + "/providers/" + types[0]
				for k := range names {
					r.ID += "/" + types[k+1] + "/" + names[k]
				}
			}
			deps, _ := body["dependsOn"].([]any)
			var raw []string
			for j, d := range deps {
				dv, err := sc.evalValue(d, fmt.Sprintf("%s.dependsOn[%d]", ip, j))
				if err != nil {
					return err
				}
				raw = append(raw, str(dv))
			}
			p.rawDeps = append(p.rawDeps, raw)
			p.bodies = append(p.bodies, body)
			p.loops = append(p.loops, loop)
			idx := map[string]int{}
			for k, v := range sc.copyIndex {
				idx[k] = v
			}
			p.iters = append(p.iters, idx)
			p.Resources = append(p.Resources, r)
			if kids, ok := body["resources"].([]any); ok {
				if err := p.expand(kids, ip+".resources", ty, name, idx); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func (p *Plan) resolve(dep string) []string {
	var out []string
	for i, r := range p.Resources {
		if strings.EqualFold(r.ID, dep) || strings.EqualFold(p.loops[i], dep) || strings.EqualFold(r.Name, dep) || strings.HasSuffix(strings.ToLower(r.Name), "/"+strings.ToLower(dep)) {
			out = append(out, r.ID)
		}
	}
	return out
}

func (sc *scope) resolveRef(name string) string {
	if sc.plan != nil {
		if ids := sc.plan.resolve(name); len(ids) == 1 {
			return ids[0]
		}
	}
	return name
}

func (p *Plan) order() error {
	for i, r := range p.Resources {
		for _, d := range p.rawDeps[i] {
			ids := p.resolve(d)
			if len(ids) == 0 {
				return invalid(r.Path+".dependsOn", "the resource %q depends on %q, which is not in the template (or its condition is false)", r.Name, d)
			}
			for _, id := range ids {
				if !strings.EqualFold(id, r.ID) && !contains(r.DependsOn, id) {
					r.DependsOn = append(r.DependsOn, id)
				}
			}
		}
	}
	done := map[string]bool{}
	var out []*Resource
	for len(out) < len(p.Resources) {
		progress := false
		for _, r := range p.Resources {
			if done[strings.ToLower(r.ID)] {
				continue
			}
			ready := true
			for _, d := range r.DependsOn {
				ready = ready && done[strings.ToLower(d)]
			}
			if ready {
				done[strings.ToLower(r.ID)] = true
				out = append(out, r)
				progress = true
				break
			}
		}
		if !progress {
			var left []string
			for _, r := range p.Resources {
				if !done[strings.ToLower(r.ID)] {
					left = append(left, r.Name)
				}
			}
			return invalid("resources", "the dependsOn of %s form a cycle; break it", strings.Join(left, ", "))
		}
	}
	p.Resources = out
	return nil
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

var skip = map[string]bool{"type": true, "name": true, "apiversion": true, "dependson": true, "condition": true, "copy": true, "comments": true, "resources": true, "scope": true}

func (p *Plan) render(r *Resource, ref Referencer) (map[string]any, error) {
	body := p.bodies[r.index]
	sc := p.scope(ref)
	for k, v := range p.iters[r.index] {
		sc.copyIndex[k] = v
	}
	out := map[string]any{}
	for k, v := range body {
		if skip[strings.ToLower(k)] {
			continue
		}
		x, err := sc.evalValue(v, r.Path+"."+k)
		if err != nil {
			return nil, err
		}
		if x != nil {
			out[k] = x
		}
	}
	return out, nil
}

func (p *Plan) outputs(ref Referencer) (map[string]ParameterValue, error) {
	outs, _ := p.t.raw["outputs"].(map[string]any)
	res := map[string]ParameterValue{}
	for n, o := range outs {
		path := "outputs." + n
		od, ok := o.(map[string]any)
		if !ok {
			return nil, invalid(path, "an output must be an object")
		}
		sc := p.scope(ref)
		if c, ok := od["condition"]; ok {
			cv, err := sc.evalValue(c, path+".condition")
			if err != nil {
				return nil, err
			}
			if b, _ := cv.(bool); !b {
				continue
			}
		}
		ty, _ := od["type"].(string)
		v, err := sc.evalValue(od["value"], path+".value")
		if err != nil {
			return nil, err
		}
		if c, ok := od["copy"].(map[string]any); ok {
			cv, err := sc.evalValue(c["count"], path+".copy.count")
			if err != nil {
				return nil, err
			}
			cnt, _ := toInt(cv)
			arr := []any{}
			for i := 0; i < int(cnt); i++ {
				sc.copyIndex[""] = i
				x, err := sc.evalValue(c["input"], path+".copy.input")
				if err != nil {
					return nil, err
				}
				arr = append(arr, x)
			}
			v = arr
		}
		res[n] = ParameterValue{Type: typeNames[strings.ToLower(ty)], Value: v}
	}
	return res, nil
}
