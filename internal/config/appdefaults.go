package config

import (
	"reflect"
	"strings"

	"gopkg.in/yaml.v3"
)

// AppDefaults are the fields shared by the apps of one API (douyin.app_defaults,
// keyed ecpay or trade): a field an app leaves out is taken from its API's
// entry when that entry sets it, else from DefaultApp. A service provider
// with a hundred mini-programs writes the platform key file, the settle
// rule and the audit policy once, and each app only its id and secrets.
type AppDefaults map[string]App

// fillAppDefaults gives every app, for each field its YAML left out, the
// value douyin.app_defaults gives its API, else DefaultApp's: a list
// element starts from zero, not from a default. The ${NAME} variables a
// default names are recorded under the app's own path, so that an error
// about the field still names them.
func fillAppDefaults(c *Config, root *yaml.Node) {
	douyin := value(root, "douyin")
	if douyin == nil {
		return
	}
	apps := value(douyin, "apps")
	if apps == nil {
		return
	}
	if apps.Kind == yaml.AliasNode {
		apps = apps.Alias
	}
	shared := sharedKeys(douyin)
	def := reflect.ValueOf(DefaultApp())
	fields := yamlFields(def.Type())
	for i, n := range apps.Content {
		if i >= len(c.Douyin.Apps) {
			break
		}
		present := presentKeys(n)
		app := reflect.ValueOf(&c.Douyin.Apps[i]).Elem()
		api := APIEcpay
		if present["api"] {
			api = c.Douyin.Apps[i].API
		}
		from := reflect.ValueOf(c.Douyin.AppDefaults[api])
		for name, f := range fields {
			if present[name] {
				continue
			}
			if shared[api][name] {
				app.FieldByIndex(f.Index).Set(from.FieldByIndex(f.Index))
			} else {
				app.FieldByIndex(f.Index).Set(def.FieldByIndex(f.Index))
			}
			// Also when the variable was empty (the key is then dropped).
			if vars := c.env[join(join("douyin.app_defaults", api), name)]; len(vars) > 0 {
				if c.env == nil {
					c.env = map[string][]string{}
				}
				c.env[join(index("douyin.apps", i), name)] = vars
			}
		}
	}
}

// sharedKeys lists, per API, the keys douyin.app_defaults sets.
func sharedKeys(douyin *yaml.Node) map[string]map[string]bool {
	n := value(douyin, "app_defaults")
	if n == nil {
		return nil
	}
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	out := map[string]map[string]bool{}
	for api := range presentKeys(n) {
		if v := value(n, api); v != nil {
			out[api] = presentKeys(v)
		}
	}
	return out
}

// yamlFields maps the YAML keys of struct type t to its fields.
func yamlFields(t reflect.Type) map[string]reflect.StructField {
	m := make(map[string]reflect.StructField, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		switch name {
		case "-":
			continue
		case "":
			name = strings.ToLower(f.Name)
		}
		m[name] = f
	}
	return m
}
