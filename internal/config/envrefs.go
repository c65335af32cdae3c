package config

import (
	"regexp"

	"gopkg.in/yaml.v3"
)

// envRef matches ${NAME} and ${NAME:-default}; $${ is a literal.
var envRef = regexp.MustCompile(`(^|[^$])\$\{([A-Za-z_][A-Za-z0-9_]*)`)

// envRefs maps the YAML path of every scalar that names environment
// variables to their names, before they are expanded; nil when none does.
func envRefs(n *yaml.Node, path string) map[string][]string {
	var out map[string][]string
	var walk func(n *yaml.Node, path string)
	walk = func(n *yaml.Node, path string) {
		switch n.Kind {
		case yaml.DocumentNode:
			for _, c := range n.Content {
				walk(c, path)
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				walk(c, index(path, i))
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				walk(n.Content[i+1], join(path, n.Content[i].Value))
			}
		case yaml.ScalarNode:
			for _, m := range envRef.FindAllStringSubmatch(n.Value, -1) {
				if out == nil {
					out = map[string][]string{}
				}
				out[path] = append(out[path], m[2])
			}
		}
	}
	walk(n, path)
	return out
}
