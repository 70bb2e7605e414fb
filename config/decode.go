package config

import (
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// decode walks a yaml.Node into v by the `yaml` struct tags, recording the
// node of every key path and reporting every problem instead of stopping at
// the first: unknown and duplicate keys, wrong kinds, bad scalars. Types that
// implement yaml.Unmarshaler parse their own scalars; their error text becomes
// the diagnostic message.
func (v *Validator) decode(n *yaml.Node, path string, dst reflect.Value) {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	v.nodes[path] = n
	if isNull(n) {
		return // absent and null are the same: the zero value, then the default
	}
	t := dst.Type()
	if t == secretType {
		if n.Kind == yaml.ScalarNode {
			// Never echo the value: it is very likely the secret itself.
			v.secret[path] = true
			v.at(n, SeverityError, path, "", "a secret cannot be written in the configuration file, where backups, version control and diagnostics would expose it; use {env: NAME} or {file: PATH}")
			return
		}
		v.decodeStruct(n, path, dst)
		// dst stays where it is: secrets live in structs, pointers and
		// slices, never in maps, whose values are copied.
		v.secrets = append(v.secrets, secretRef{path: path, s: dst.Addr().Interface().(*Secret)})
		return
	}
	if t.Kind() == reflect.Pointer {
		if dst.IsNil() {
			dst.Set(reflect.New(t.Elem()))
		}
		v.decode(n, path, dst.Elem())
		return
	}
	if u, ok := dst.Addr().Interface().(yaml.Unmarshaler); ok {
		if err := u.UnmarshalYAML(n); err != nil {
			v.at(n, SeverityError, path, scalarValue(n), err.Error())
		}
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		if t == checksType {
			v.decodeChecks(n, path, dst.Addr().Interface().(*Checks))
			return
		}
		v.decodeStruct(n, path, dst)
	case reflect.Slice:
		if !v.want(n, path, yaml.SequenceNode, "a list") {
			return
		}
		s := reflect.MakeSlice(t, len(n.Content), len(n.Content))
		for i, c := range n.Content {
			v.decode(c, fmt.Sprintf("%s[%d]", path, i), s.Index(i))
		}
		dst.Set(s)
	case reflect.Map:
		if !v.want(n, path, yaml.MappingNode, "a mapping") {
			return
		}
		m := reflect.MakeMapWithSize(t, len(n.Content)/2)
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			kp := join(path, k.Value)
			v.keys[kp] = k
			if seen[k.Value] {
				v.at(k, SeverityError, kp, k.Value, fmt.Sprintf("duplicate key %q", k.Value))
				continue
			}
			seen[k.Value] = true
			e := reflect.New(t.Elem()).Elem()
			v.decode(val, kp, e)
			m.SetMapIndex(reflect.ValueOf(k.Value).Convert(t.Key()), e)
		}
		dst.Set(m)
	case reflect.String:
		if v.want(n, path, yaml.ScalarNode, "a string") {
			dst.SetString(n.Value)
		}
	case reflect.Bool:
		if !v.want(n, path, yaml.ScalarNode, "true or false") {
			return
		}
		if n.Tag != "!!bool" {
			v.at(n, SeverityError, path, n.Value, fmt.Sprintf("%q is not a boolean (true or false)", n.Value))
			return
		}
		b, _ := strconv.ParseBool(strings.ToLower(n.Value))
		dst.SetBool(b)
	case reflect.Int, reflect.Int64, reflect.Int32:
		if !v.want(n, path, yaml.ScalarNode, "a whole number") {
			return
		}
		i, err := strconv.ParseInt(strings.ReplaceAll(n.Value, "_", ""), 10, t.Bits())
		if err != nil || n.Tag != "!!int" {
			v.at(n, SeverityError, path, n.Value, fmt.Sprintf("%q is not a whole number", n.Value))
			return
		}
		dst.SetInt(i)
	default:
		panic(fmt.Sprintf("config: no decoder for %s", t)) // a programming error in this package
	}
}

func (v *Validator) decodeStruct(n *yaml.Node, path string, dst reflect.Value) {
	if !v.want(n, path, yaml.MappingNode, "a mapping") {
		return
	}
	fields := map[string][]int{}
	var names []string
	structFields(dst.Type(), nil, fields, &names)
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		kp := join(path, k.Value)
		f, ok := fields[k.Value]
		switch {
		case !ok:
			v.at(k, SeverityError, kp, k.Value, fmt.Sprintf("unknown key %q (known: %s)", k.Value, strings.Join(names, ", ")))
		case seen[k.Value]:
			v.at(k, SeverityError, kp, k.Value, fmt.Sprintf("duplicate key %q", k.Value))
		default:
			seen[k.Value] = true
			v.keys[kp] = k
			v.decode(val, kp, dst.FieldByIndex(f))
		}
	}
}

// structFields lists the keys of struct type t in order, each with the index
// of its field; the fields of an embedded struct tagged `yaml:",inline"`
// (config.CheckCommon) are the struct's own, where it stands.
func structFields(t reflect.Type, at []int, fields map[string][]int, names *[]string) {
	for i := range t.NumField() {
		f := t.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		idx := append(slices.Clone(at), i)
		switch {
		case f.Anonymous && name == "" && opts == "inline" && f.Type.Kind() == reflect.Struct:
			structFields(f.Type, idx, fields, names)
		case name == "" || name == "-" || !f.IsExported():
		default:
			fields[name] = idx
			*names = append(*names, name)
		}
	}
}

// want reports whether n is of the wanted kind, and an error if not.
func (v *Validator) want(n *yaml.Node, path string, kind yaml.Kind, what string) bool {
	if n.Kind == kind {
		return true
	}
	v.at(n, SeverityError, path, scalarValue(n), fmt.Sprintf("expected %s, found %s", what, kindName(n)))
	return false
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "a list"
	case yaml.MappingNode:
		return "a mapping"
	default:
		return strconv.Quote(n.Value)
	}
}

func scalarValue(n *yaml.Node) string {
	if n.Kind == yaml.ScalarNode {
		return n.Value
	}
	return ""
}
