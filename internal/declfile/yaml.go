package declfile

import (
	"bytes"
	"errors"
	"io"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

var yamlFields = map[string][]string{
	"orders":      {"app_id", "out_order_no", "total_amount"},
	"refunds":     {"app_id", "order", "key", "amount", "reason"},
	"settlements": {"app_id", "order", "at", "receivers", "desc", "item"},
	"fulfilments": {"app_id", "order", "item", "at"},
}

// receiverFields are the keys of a YAML receiver.
var receiverFields = []string{"merchant_uid", "amount"}

// streamYAML reads one YAML document (a second one is refused, as the
// config reader does) and passes its rows to fn.
func streamYAML(name string, r io.Reader, fn func(Row) error) error {
	// Read the whole (limited) file first: the YAML decoder would
	// otherwise reject an oversized file of junk for its content before
	// its size.
	raw, err := io.ReadAll(r)
	if err != nil {
		return readErr(name, err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil
		}
		return readErr(name, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return lineError(name, extra.Line, "a second YAML document (after ---): a declare file holds one; merge them or declare each file on its own")
	} else if !errors.Is(err, io.EOF) {
		return readErr(name, err)
	}
	if len(doc.Content) == 0 {
		return nil
	}
	top := doc.Content[0]
	if top.Kind != yaml.MappingNode {
		return lineError(name, top.Line, "want a mapping with orders, refunds, settlements and fulfilments")
	}
	for i := 0; i+1 < len(top.Content); i += 2 {
		if err := yamlSection(name, top.Content[i], top.Content[i+1], fn); err != nil {
			return err
		}
	}
	return nil
}

// yamlSection passes the rows of one section (orders, refunds or
// settlements) to fn.
func yamlSection(name string, key, val *yaml.Node, fn func(Row) error) error {
	allowed, ok := yamlFields[key.Value]
	if !ok {
		return lineError(name, key.Line, "unknown section %q (want orders, refunds, settlements or fulfilments)", key.Value)
	}
	if val.Kind != yaml.SequenceNode {
		return lineError(name, val.Line, "%s: want a list", key.Value)
	}
	for _, item := range val.Content {
		if item.Kind != yaml.MappingNode {
			return lineError(name, item.Line, "%s: want a mapping per row", key.Value)
		}
		for j := 0; j+1 < len(item.Content); j += 2 {
			f := item.Content[j]
			if !slices.Contains(allowed, f.Value) {
				return lineError(name, f.Line, "%s: unknown field %q (want %s)", key.Value, f.Value, strings.Join(allowed, ", "))
			}
			if f.Value == "receivers" {
				if err := checkReceivers(name, item.Content[j+1]); err != nil {
					return err
				}
			}
		}
		var row Row
		var err error
		switch key.Value {
		case "orders":
			row.Order = &Order{Line: item.Line}
			err = item.Decode(row.Order)
		case "refunds":
			row.Refund = &Refund{Line: item.Line}
			err = item.Decode(row.Refund)
		case "settlements":
			row.Settlement = &Settlement{Line: item.Line}
			err = item.Decode(row.Settlement)
		case "fulfilments":
			row.Fulfilment = &Fulfilment{Line: item.Line}
			err = item.Decode(row.Fulfilment)
		}
		if err != nil {
			return lineError(name, item.Line, "%s: %v", key.Value, yamlMsg(err))
		}
		if err := fn(row); err != nil {
			return err
		}
	}
	return nil
}

// checkReceivers refuses unknown keys in a YAML receivers list, so that a
// misspelt merchant_uid is an error rather than a receiver without one.
func checkReceivers(name string, list *yaml.Node) error {
	if list.Kind != yaml.SequenceNode {
		return nil // Decode reports the type error
	}
	for _, rc := range list.Content {
		if rc.Kind != yaml.MappingNode {
			continue
		}
		for k := 0; k+1 < len(rc.Content); k += 2 {
			if f := rc.Content[k]; !slices.Contains(receiverFields, f.Value) {
				return lineError(name, f.Line, "settlements: receivers: unknown field %q (want %s)", f.Value, strings.Join(receiverFields, ", "))
			}
		}
	}
	return nil
}

func yamlMsg(err error) string {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		return strings.Join(te.Errors, "; ")
	}
	return err.Error()
}
