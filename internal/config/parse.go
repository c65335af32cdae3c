package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// DefaultPath is the config file read when neither --config nor PAYD_CONFIG
// names one: config.yaml in the working directory.
const DefaultPath = "config.yaml"

// PathEnv is the environment variable that names the config file when
// --config is not given.
const PathEnv = "PAYD_CONFIG"

// ResolvePath returns the config file to read: flag (the --config value)
// when set, else $PAYD_CONFIG, else DefaultPath. getenv is os.Getenv when nil.
func ResolvePath(flag string, getenv func(string) string) string {
	if flag != "" {
		return flag
	}
	if getenv == nil {
		getenv = os.Getenv
	}
	if p := getenv(PathEnv); p != "" {
		return p
	}
	return DefaultPath
}

// Load reads, parses (expanding variables from the process environment) and
// validates the config file at path. Its errors name the file. It does not
// call ValidateServe.
func Load(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	defer f.Close()
	c, err := Parse(f)
	if err != nil {
		return nil, prefixed("parse config "+path, err)
	}
	if err := c.Validate(); err != nil {
		return nil, prefixed("invalid config "+path, err)
	}
	return c, nil
}

// prefixed wraps err after prefix: on the same line when err is one line,
// else with every problem on a line of its own.
func prefixed(prefix string, err error) error {
	if strings.Contains(err.Error(), "\n") {
		return fmt.Errorf("%s:\n%w", prefix, err)
	}
	return fmt.Errorf("%s: %w", prefix, err)
}

// Parse reads one YAML document over Default, expanding variables from the
// process environment. See ParseWithEnv.
func Parse(r io.Reader) (*Config, error) {
	return ParseWithEnv(r, os.Getenv)
}

// ParseWithEnv reads one YAML document over Default. An empty document gives
// Default.
//
// In every value (not in keys or comments), ${NAME} is replaced by
// getenv("NAME") and ${NAME:-text} by getenv("NAME"), or text when that is
// empty; $${ stands for a literal ${. The text of a default ends at the
// first }. The result is read as if it had been written in place, but
// cannot break the YAML around it: an unquoted result is typed as YAML types
// it (so workers: ${W:-8} is a number), a quoted one stays a string. Inside
// flow collections ({...} or [...]) quote a reference: YAML itself reads the
// } of ${X} as the end of the collection.
//
// A key with no value, or whose value expands to nothing, is the same as a
// missing key: the default applies, and a required field is then reported
// by Validate. A list given in YAML replaces the default list; a limits
// mapping replaces only the rates it names.
//
// ParseWithEnv reports every unknown key, repeated key, value of the wrong
// shape and unparsable number or duration it finds, each with its line and
// YAML path. It checks nothing else: call Validate. getenv is os.Getenv when
// nil.
func ParseWithEnv(r io.Reader, getenv func(string) string) (*Config, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	data, err := readLimited(r)
	if err != nil {
		return nil, err
	}
	c := Default()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return c, nil
		}
		return nil, err
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		if err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("line %d: only one YAML document is allowed", extra.Line)
	}
	root := &doc
	if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
		root = doc.Content[0]
	}
	if isNull(root) {
		return c, nil
	}
	var problems []error
	c.env = envRefs(root, "") // where values came from, for error messages
	expandNode(root, "", getenv, &problems)
	if len(problems) > 0 {
		return nil, errors.Join(problems...)
	}
	dropNulls(root)
	ck := checker{seen: make(map[checked]bool)}
	ck.check(root, reflect.TypeOf(Config{}), "")
	if len(ck.problems) > 0 {
		return nil, errors.Join(ck.problems...)
	}
	if err := root.Decode(c); err != nil {
		// Unreachable after check; kept so that a gap in check fails loudly.
		return nil, fmt.Errorf("decode: %w", err)
	}
	fillAppDefaults(c, root)
	return c, nil
}

// expandNode expands ${...} references in every scalar value under n.
// Anchored nodes are expanded once, where they are defined; aliases share
// them.
func expandNode(n *yaml.Node, path string, getenv func(string) string, problems *[]error) {
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			expandNode(c, path, getenv, problems)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			expandNode(c, index(path, i), getenv, problems)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			expandNode(n.Content[i+1], join(path, n.Content[i].Value), getenv, problems)
		}
	case yaml.ScalarNode:
		v, err := expand(n.Value, getenv)
		if err != nil {
			*problems = append(*problems, fmt.Errorf("line %d: %s: %w", n.Line, display(path), err))
			return
		}
		if v == n.Value {
			return
		}
		n.Value = v
		if n.Style == 0 {
			// An unquoted, untagged value: let YAML type the new text.
			n.Tag = ""
		}
	}
}

// expand replaces ${NAME} and ${NAME:-default} in s; $${ is a literal ${.
// Its errors never quote s, which may hold a secret.
func expand(s string, getenv func(string) string) (string, error) {
	if !strings.Contains(s, "${") {
		return s, nil
	}
	var b strings.Builder
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			b.WriteString(s)
			return b.String(), nil
		}
		if i > 0 && s[i-1] == '$' {
			b.WriteString(s[:i-1])
			b.WriteString("${")
			s = s[i+2:]
			continue
		}
		b.WriteString(s[:i])
		end := strings.IndexByte(s[i:], '}')
		if end < 0 {
			return "", errors.New("${ without a closing }")
		}
		ref := s[i+2 : i+end]
		s = s[i+end+1:]
		name, def, hasDef := strings.Cut(ref, ":-")
		if !isEnvName(name) {
			return "", errors.New("bad variable reference: want ${NAME} or ${NAME:-default}")
		}
		v := getenv(name)
		if v == "" && hasDef {
			v = def
		}
		b.WriteString(v)
	}
}

// isEnvName reports whether s is a shell variable name.
func isEnvName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		switch {
		case r == '_', r >= 'A' && r <= 'Z', r >= 'a' && r <= 'z':
		case r >= '0' && r <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// dropNulls removes every mapping entry whose value is null, so that the
// field keeps its default.
func dropNulls(n *yaml.Node) {
	switch n.Kind {
	case yaml.DocumentNode, yaml.SequenceNode:
		for _, c := range n.Content {
			dropNulls(c)
		}
	case yaml.MappingNode:
		kept := n.Content[:0]
		for i := 0; i+1 < len(n.Content); i += 2 {
			if isNull(n.Content[i+1]) {
				continue
			}
			dropNulls(n.Content[i+1])
			kept = append(kept, n.Content[i], n.Content[i+1])
		}
		n.Content = kept
	}
}

const (
	nullTag  = "!!null"
	mergeTag = "!!merge"
)

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == nullTag
}

func isMerge(key *yaml.Node) bool {
	return key.Kind == yaml.ScalarNode && key.Value == "<<" && key.ShortTag() == mergeTag
}

// checker reports, by line and YAML path, every part of a YAML tree that
// would not decode into its Go type: unknown and repeated keys, lists where
// values belong, unparsable numbers, booleans and durations. It does what
// yaml.Decoder.KnownFields does, and more, on a tree: KnownFields is lost by
// yaml.Node.Decode, which payd needs to expand variables safely.
type checker struct {
	problems []error
	seen     map[checked]bool
}

// checked is a node already checked against a type; aliases make a tree a
// graph, and each node is checked once.
type checked struct {
	n *yaml.Node
	t reflect.Type
}

var durationType = reflect.TypeOf(Duration{})

func (c *checker) add(n *yaml.Node, path, format string, args ...any) {
	c.problems = append(c.problems, fmt.Errorf("line %d: %s: %s", n.Line, display(path), fmt.Sprintf(format, args...)))
}

func (c *checker) check(n *yaml.Node, t reflect.Type, path string) {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	k := checked{n, t}
	if c.seen[k] {
		return
	}
	c.seen[k] = true
	if isNull(n) { // only in a list: mapping entries with no value were dropped
		c.add(n, path, "empty")
		return
	}
	if t == durationType || t.String() == "time.Duration" { // yaml.v3 decodes both from "5s"
		if n.Kind != yaml.ScalarNode {
			c.add(n, path, "want a duration such as \"5s\", not a %s", kindName(n))
		} else if _, err := parseDuration(n.Value); err != nil {
			c.add(n, path, "%v", err)
		}
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		c.fields(n, t, path)
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			c.add(n, path, "want a mapping, not a %s", kindName(n))
			return
		}
		c.pairs(n, path, func(k, v *yaml.Node) {
			if isMerge(k) {
				for _, m := range merged(v) {
					c.check(m, t, path)
				}
				return
			}
			c.check(v, t.Elem(), join(path, k.Value))
		})
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			c.add(n, path, "want a list, not a %s", kindName(n))
			return
		}
		for i, e := range n.Content {
			c.check(e, t.Elem(), index(path, i))
		}
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			c.add(n, path, "want a single value, not a %s", kindName(n))
		}
	case reflect.Bool, reflect.Int, reflect.Int64, reflect.Float64:
		if n.Kind != yaml.ScalarNode {
			c.add(n, path, "want a single value, not a %s", kindName(n))
			return
		}
		want, tags := "not an integer", []string{"!!int"}
		switch t.Kind() {
		case reflect.Bool:
			want, tags = "want true or false", []string{"!!bool"}
		case reflect.Float64:
			want, tags = "not a number", []string{"!!int", "!!float"}
		}
		// The tag check stops yaml.v3 from truncating 1.5 into an int.
		if !slices.Contains(tags, n.ShortTag()) || n.Decode(reflect.New(t).Interface()) != nil {
			if n.Style&(yaml.SingleQuotedStyle|yaml.DoubleQuotedStyle) != 0 {
				want += " (write it without quotes)"
			}
			c.add(n, path, "%q: %s", n.Value, want)
		}
	default:
		c.add(n, path, "config field of unsupported Go type %s", t)
	}
}

// fields checks a mapping against struct type t.
func (c *checker) fields(n *yaml.Node, t reflect.Type, path string) {
	if n.Kind != yaml.MappingNode {
		c.add(n, path, "want a mapping, not a %s", kindName(n))
		return
	}
	byName := yamlFields(t)
	c.pairs(n, path, func(k, v *yaml.Node) {
		if isMerge(k) {
			for _, m := range merged(v) {
				c.check(m, t, path)
			}
			return
		}
		f, ok := byName[k.Value]
		if !ok {
			msg := "unknown field"
			if s := closest(k.Value, byName); s != "" {
				msg += fmt.Sprintf("; did you mean %q?", s)
			}
			c.add(k, join(path, k.Value), "%s", msg)
			return
		}
		c.check(v, f.Type, join(path, k.Value))
	})
}

// pairs calls fn for each entry of mapping n whose key is a single value,
// reporting other keys and repeated ones.
func (c *checker) pairs(n *yaml.Node, path string, fn func(k, v *yaml.Node)) {
	first := make(map[string]int)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			c.add(k, path, "a key must be a single value, not a %s", kindName(k))
			continue
		}
		if !isMerge(k) {
			if line, dup := first[k.Value]; dup {
				c.add(k, join(path, k.Value), "repeated (first at line %d)", line)
				continue
			}
			first[k.Value] = k.Line
		}
		fn(k, v)
	}
}

// merged returns the mappings a merge key's value names: one, or a list.
func merged(v *yaml.Node) []*yaml.Node {
	if v.Kind == yaml.AliasNode {
		v = v.Alias
	}
	if v.Kind != yaml.SequenceNode {
		return []*yaml.Node{v}
	}
	var out []*yaml.Node
	for _, e := range v.Content {
		if e.Kind == yaml.AliasNode {
			e = e.Alias
		}
		out = append(out, e)
	}
	return out
}

// presentKeys returns the keys set in mapping n, including merged ones.
func presentKeys(n *yaml.Node) map[string]bool {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	keys := make(map[string]bool)
	if n.Kind != yaml.MappingNode {
		return keys
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if isMerge(k) {
			for _, m := range merged(v) {
				for mk := range presentKeys(m) {
					keys[mk] = true
				}
			}
			continue
		}
		keys[k.Value] = true
	}
	return keys
}

// value returns the value of key in mapping n, or nil.
func value(n *yaml.Node, key string) *yaml.Node {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n.Kind != yaml.MappingNode {
		return nil
	}
	var fromMerge *yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Value == key && !isMerge(k) {
			return v
		}
		if isMerge(k) && fromMerge == nil {
			for _, m := range merged(v) {
				if mv := value(m, key); mv != nil {
					fromMerge = mv
					break
				}
			}
		}
	}
	return fromMerge
}

// closest returns the known key nearest to key, if it is a likely typo.
func closest(key string, known map[string]reflect.StructField) string {
	maxD := max(1, min(2, len(key)/4)) // one typo per four letters, at most two
	best, bestD := "", maxD+1
	for k := range known {
		if d := editDistance(key, k); d < bestD || d == bestD && k < best {
			best, bestD = k, d
		}
	}
	if bestD > maxD {
		return ""
	}
	return best
}

// editDistance is the optimal-string-alignment distance between a and b:
// insertions, deletions, substitutions and swaps of neighbours count one.
func editDistance(a, b string) int {
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "mapping"
	case yaml.SequenceNode:
		return "list"
	default:
		return "single value"
	}
}

// join appends key to a YAML path.
func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// index appends a list index to a YAML path.
func index(path string, i int) string { return fmt.Sprintf("%s[%d]", path, i) }

// display names the top level, whose path is empty.
func display(path string) string {
	if path == "" {
		return "(top level)"
	}
	return path
}
