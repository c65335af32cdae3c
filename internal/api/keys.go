package api

import (
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
)

// internalKeys are names of payd's bookkeeping that must never appear in a
// public answer, and names that would be ambiguous there.
var internalKeys = map[string]string{
	"version":     "row version",
	"lease_owner": "lease",
	"lease_until": "lease",
	"hint_seq":    "hint counter",
	"order_id":    "ambiguous: douyin_order_id or payd's row id",
	"raw":         "callback body",
	"signature":   "callback signature",
}

var snakeCase = regexp.MustCompile(`^[a-z][a-z0-9]*(_[a-z0-9]+)*$`)

// BadKeys walks a JSON document and returns, sorted, the object keys that
// are not snake_case or that name internal fields, each with its path. An
// empty result means the document is fit to be a public answer.
func BadKeys(doc []byte) ([]string, error) {
	var v any
	if err := json.Unmarshal(doc, &v); err != nil {
		return nil, fmt.Errorf("bad keys: %w", err)
	}
	var bad []string
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, c := range x {
				p := path + "." + k
				if why, ok := internalKeys[k]; ok {
					bad = append(bad, p+" ("+why+")")
				} else if !snakeCase.MatchString(k) {
					bad = append(bad, p+" (not snake_case)")
				}
				walk(p, c)
			}
		case []any:
			for i, c := range x {
				walk(fmt.Sprintf("%s[%d]", path, i), c)
			}
		}
	}
	walk("$", v)
	sort.Strings(bad)
	return bad, nil
}
