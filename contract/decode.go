package contract

import (
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"sync"

	"go.yaml.in/yaml/v3"

	"github.com/registrar-go/registrar/bus"
)

// decoder turns a yaml.Node tree into a Contract. It is strict like a yaml
// Decoder with KnownFields(true), and more: it goes on after a problem, so
// that one run reports every unknown key, duplicate key and ill-typed value,
// each with its path, line and column.
type decoder struct {
	file string
	errs Errors
	// failed holds the formatted paths of the elements that did not decode
	// (they are left zero), and failedAbove the paths of the elements that
	// contain one.
	failed, failedAbove map[string]bool
	// budget is how many more nodes the decoder may visit. Aliases let a
	// small document stand for a huge one; the budget stops that, and
	// overspent is then the one error to report.
	budget    int
	overspent *Error
}

func newDecoder(file string, root *yaml.Node) *decoder {
	return &decoder{
		file: file, failed: map[string]bool{}, failedAbove: map[string]bool{},
		budget: 4*treeSize(root) + 1000,
	}
}

// treeSize counts the nodes of the tree at n, not following aliases.
func treeSize(n *yaml.Node) int {
	size, stack := 0, []*yaml.Node{n}
	for len(stack) > 0 {
		n, stack = stack[len(stack)-1], stack[:len(stack)-1]
		size++
		stack = append(stack, n.Content...)
	}
	return size
}

// fieldFunc decodes the value node n of the element at p.
type fieldFunc func(n *yaml.Node, p path)

func (d *decoder) fail(n *yaml.Node, p path, format string, args ...any) {
	d.errs = append(d.errs, &Error{
		File: d.file, Line: n.Line, Column: n.Column, Path: p.String(),
		Message: fmt.Sprintf(format, args...),
	})
}

// failValue reports that the element at p did not decode.
func (d *decoder) failValue(n *yaml.Node, p path, format string, args ...any) {
	d.fail(n, p, format, args...)
	d.failed[p.String()] = true
	for i := range p {
		d.failedAbove[p[:i].String()] = true
	}
}

// suppresses reports whether the validation issue is about, or involves, an
// element that did not decode (or one that contains or is part of it), so
// that it would only repeat that element's error.
func (d *decoder) suppresses(iss issue) bool {
	return d.overlaps(iss.at) || slices.ContainsFunc(iss.refs, d.overlaps)
}

// overlaps reports whether the element at p contains, or is part of, an
// element that did not decode.
func (d *decoder) overlaps(p path) bool {
	if s := p.String(); d.failed[s] || d.failedAbove[s] {
		return true
	}
	for i := range p {
		if d.failed[p[:i].String()] {
			return true
		}
	}
	return false
}

// spend takes one visit of node n from the budget and reports whether there
// was one left.
func (d *decoder) spend(n *yaml.Node) bool {
	if d.budget--; d.budget == -1 {
		d.overspent = &Error{File: d.file, Line: n.Line, Column: n.Column,
			Message: "aliases expand the document too far; stopped decoding"}
	}
	return d.budget >= 0
}

// value resolves the value node n and reports whether it holds something to
// decode: false for null (the element stays zero), for a broken alias, and
// once the budget is spent.
func (d *decoder) value(n *yaml.Node) (*yaml.Node, bool) {
	if !d.spend(n) {
		return nil, false
	}
	n = resolve(n)
	return n, n != nil && !isNull(n)
}

// mapping decodes the mapping n at p by calling fields[key] for each key.
// Unknown keys, duplicate keys, non-string keys and merge keys are errors.
func (d *decoder) mapping(n *yaml.Node, p path, fields map[string]fieldFunc) {
	n, ok := d.value(n)
	if !ok {
		return
	}
	if n.Kind != yaml.MappingNode {
		d.failValue(n, p, "want a mapping, got %s", kindName(n))
		return
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content) && d.spend(n.Content[i]); i += 2 {
		k, v := resolve(n.Content[i]), n.Content[i+1]
		if k == nil || k.Kind != yaml.ScalarNode {
			d.fail(n.Content[i], p, "keys must be strings, got %s", kindName(n.Content[i]))
			continue
		}
		if k.ShortTag() == "!!merge" {
			d.fail(k, p, "YAML merge keys (<<) are not supported in a contract")
			continue
		}
		fn, known := fields[k.Value]
		if !known {
			var h string
			if len(d.errs) < maxErrors { // hints cost; only listed errors get one
				h = hint(k.Value, p, fields)
			}
			d.fail(k, p, "unknown key %q%s", truncate(k.Value), h)
			continue
		}
		if first, dup := seen[k.Value]; dup {
			d.fail(k, p, "duplicate key %q (first at line %d)", k.Value, first)
			continue
		}
		seen[k.Value] = k.Line
		fn(v, p.field(k.Value))
	}
}

func (d *decoder) str(dst *string) fieldFunc {
	return func(n *yaml.Node, p path) {
		n, ok := d.value(n)
		if !ok {
			return
		}
		if n.Kind != yaml.ScalarNode {
			d.failValue(n, p, "want a string, got %s", kindName(n))
			return
		}
		if n.ShortTag() != "!!binary" {
			*dst = n.Value
			return
		}
		if err := n.Decode(dst); err != nil {
			d.failValue(n, p, "invalid !!binary value")
		}
	}
}

func (d *decoder) strList(dst *[]string) fieldFunc {
	return func(n *yaml.Node, p path) {
		n, ok := d.value(n)
		if !ok {
			return
		}
		if n.Kind != yaml.SequenceNode {
			d.failValue(n, p, "want a list of strings, got %s", kindName(n))
			return
		}
		out := make([]string, len(n.Content))
		for i, e := range n.Content {
			d.str(&out[i])(e, p.index(i))
		}
		*dst = nilIfEmpty(out)
	}
}

func (d *decoder) strMap(dst *map[string]string) fieldFunc {
	return func(n *yaml.Node, p path) {
		n, ok := d.value(n)
		if !ok {
			return
		}
		if n.Kind != yaml.MappingNode {
			d.failValue(n, p, "want a mapping of strings, got %s", kindName(n))
			return
		}
		out := map[string]string{}
		lines := map[string]int{}
		for i := 0; i+1 < len(n.Content) && d.spend(n.Content[i]); i += 2 {
			k, v := resolve(n.Content[i]), n.Content[i+1]
			if k == nil || k.Kind != yaml.ScalarNode || isNull(k) {
				d.fail(n.Content[i], p, "keys must be strings, got %s", kindName(n.Content[i]))
				continue
			}
			if k.ShortTag() == "!!merge" {
				d.fail(k, p, "YAML merge keys (<<) are not supported in a contract")
				continue
			}
			if first, dup := lines[k.Value]; dup {
				d.fail(k, p.key(k.Value), "duplicate key (first at line %d)", first)
				continue
			}
			lines[k.Value] = k.Line
			var s string
			d.str(&s)(v, p.key(k.Value))
			out[k.Value] = s
		}
		if len(out) > 0 {
			*dst = out
		}
	}
}

func (d *decoder) routes(dst *[]EventRoute) fieldFunc {
	return func(n *yaml.Node, p path) {
		n, ok := d.value(n)
		if !ok {
			return
		}
		if n.Kind != yaml.SequenceNode {
			d.failValue(n, p, "want a list of {topic, event_type} mappings, got %s", kindName(n))
			return
		}
		out := make([]EventRoute, len(n.Content))
		for i, e := range n.Content {
			r := &out[i]
			d.mapping(e, p.index(i), map[string]fieldFunc{
				"topic":      d.str(&r.Topic),
				"event_type": d.str(&r.EventType),
			})
		}
		*dst = nilIfEmpty(out)
	}
}

func (d *decoder) duration(dst *Duration) fieldFunc {
	return func(n *yaml.Node, p path) {
		n, ok := d.value(n)
		if !ok {
			return
		}
		v, err := parseDuration(n)
		if err != nil {
			d.failValue(n, p, "%v", err)
			return
		}
		*dst = v
	}
}

// version reads a version string as bus.ParseVersion does, or a {major,
// minor, patch, prerelease, build} mapping whose prerelease and build are
// dot-separated strings or lists of identifiers.
func (d *decoder) version(dst *bus.Version) fieldFunc {
	return func(n *yaml.Node, p path) {
		n, ok := d.value(n)
		if !ok {
			return
		}
		switch n.Kind {
		case yaml.ScalarNode:
			v, err := bus.ParseVersion(n.Value)
			if err != nil {
				d.failValue(n, p, "%v", err)
				return
			}
			*dst = v
		case yaml.MappingNode:
			var v bus.Version
			var hasMajor bool
			errsBefore := len(d.errs)
			part := func(dst *int) fieldFunc {
				return func(n *yaml.Node, p path) {
					n, ok := d.value(n)
					if !ok {
						return
					}
					var x int
					if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" || n.Decode(&x) != nil || x < 0 {
						d.failValue(n, p, "want a whole number ≥ 0, got %s", kindName(n))
						return
					}
					*dst = x
				}
			}
			major := part(&v.Major)
			d.mapping(n, p, map[string]fieldFunc{
				"major":      func(n *yaml.Node, p path) { hasMajor = true; major(n, p) },
				"minor":      part(&v.Minor),
				"patch":      part(&v.Patch),
				"prerelease": d.identifiers(&v.Prerelease),
				"build":      d.identifiers(&v.Build),
			})
			if !hasMajor {
				d.failValue(n, p, "version mapping has no major")
				return
			}
			if len(d.errs) == errsBefore {
				if err := v.Validate(); err != nil {
					d.failValue(n, p, "%v", err)
					return
				}
			}
			*dst = v
		default:
			d.failValue(n, p, "want a version (\"1.2.3-rc.1+build.5\" or {major, minor, patch, prerelease, build}), got %s", kindName(n))
		}
	}
}

// identifiers reads the prerelease or build of a version mapping into dst,
// dot-separated: a string ("rc.1") or a list of identifiers ([rc, 1]). The
// version's Validate checks the identifiers; here a list's elements must be
// single identifiers, so that a '.' in one cannot pass for a separator.
func (d *decoder) identifiers(dst *string) fieldFunc {
	return func(n *yaml.Node, p path) {
		n, ok := d.value(n)
		if !ok {
			return
		}
		switch n.Kind {
		case yaml.ScalarNode:
			*dst = n.Value
		case yaml.SequenceNode:
			ids := make([]string, 0, len(n.Content))
			for i, e := range n.Content {
				id, ok := d.value(e)
				switch {
				case id == nil:
					return // the budget is spent (reported once), or a malformed tree
				case !ok || id.Kind != yaml.ScalarNode:
					d.failValue(id, p.index(i), "want an identifier, got %s", kindName(id))
					return
				case id.Value == "" || strings.Contains(id.Value, "."):
					d.failValue(id, p.index(i), "want one identifier of [0-9A-Za-z-], got %s", kindName(id))
					return
				}
				ids = append(ids, id.Value)
			}
			*dst = strings.Join(ids, ".")
		default:
			d.failValue(n, p, "want identifiers (\"rc.1\" or [rc, 1]), got %s", kindName(n))
		}
	}
}

// decodeContract decodes the top-level node n into c.
func (d *decoder) decodeContract(n *yaml.Node, c *Contract) {
	eb, ic, to := &c.EventBus, &c.IntentConsumption, &c.Timeouts
	d.mapping(n, nil, map[string]fieldFunc{
		"name":             d.str(&c.Name),
		"contract_version": d.version(&c.ContractVersion),
		"node_version":     d.str(&c.NodeVersion),
		"description":      d.str(&c.Description),
		"event_bus": func(n *yaml.Node, p path) {
			d.mapping(n, p, map[string]fieldFunc{
				"subscribe_topics":  d.strList(&eb.SubscribeTopics),
				"publish_topics":    d.strList(&eb.PublishTopics),
				"dead_letter_topic": d.str(&eb.DeadLetterTopic),
				"consumer_group":    d.str(&eb.ConsumerGroup),
				"snapshot_topic":    d.str(&eb.SnapshotTopic),
			})
		},
		"consumed_events":  d.routes(&c.ConsumedEvents),
		"published_events": d.routes(&c.PublishedEvents),
		"intent_consumption": func(n *yaml.Node, p path) {
			d.mapping(n, p, map[string]fieldFunc{
				"subscribed_intents":   d.strList(&ic.SubscribedIntents),
				"intent_routing_table": d.strMap(&ic.IntentRoutingTable),
			})
		},
		"timeouts": func(n *yaml.Node, p path) {
			d.mapping(n, p, map[string]fieldFunc{
				"ack_timeout":       d.duration(&to.AckTimeout),
				"liveness_interval": d.duration(&to.LivenessInterval),
				"liveness_window":   d.duration(&to.LivenessWindow),
				"sweep_interval":    d.duration(&to.SweepInterval),
			})
		},
	})
}

func nilIfEmpty[T any](s []T) []T {
	if len(s) == 0 {
		return nil
	}
	return s
}

// hint suggests what an unknown key at p might have meant: a sibling with a
// similar name, or the same key in another section of the contract.
func hint(key string, p path, siblings map[string]fieldFunc) string {
	// Allow one edit in short keys, two in longer ones.
	best, bestDist := "", 2
	if len(key) > 6 {
		bestDist = 3
	}
	for _, s := range slices.Sorted(maps.Keys(siblings)) {
		if dist := editDistance(normalize(key), normalize(s)); dist < bestDist {
			best, bestDist = s, dist
		}
	}
	if best != "" {
		return fmt.Sprintf("; did you mean %q?", best)
	}
	here := p.String()
	var where, under, entries []string
	for _, sec := range schemaSections()[key] {
		switch {
		case sec == here:
		case sec == "":
			where = append(where, "at the top level")
		case strings.HasSuffix(sec, "[]"):
			entries = append(entries, strings.TrimSuffix(sec, "[]"))
		default:
			under = append(under, sec)
		}
	}
	if len(under) > 0 {
		where = append(where, "under "+strings.Join(under, " or "))
	}
	if len(entries) > 0 {
		where = append(where, "in the entries of "+strings.Join(entries, " or "))
	}
	if len(where) == 0 {
		return ""
	}
	return "; it belongs " + strings.Join(where, " or ")
}

func normalize(s string) string {
	return strings.ReplaceAll(strings.ToLower(s), "-", "_")
}

// editDistance is the Levenshtein distance of a and b, in bytes; it gives up
// at 3 for long keys, which never need hints.
func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 3
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// schemaSections maps each YAML key of the contract to the sections (paths,
// "" for the top level, "consumed_events[]" style for list elements) where
// it is defined, read from the yaml tags of the types.
var schemaSections = sync.OnceValue(func() map[string][]string {
	out := map[string][]string{}
	var walk func(t reflect.Type, at string)
	walk = func(t reflect.Type, at string) {
		for i := range t.NumField() {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if !f.IsExported() || name == "" || name == "-" {
				continue
			}
			out[name] = append(out[name], at)
			sub := name
			if at != "" {
				sub = at + "." + name
			}
			ft := f.Type
			if ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct {
				walk(ft.Elem(), sub+"[]")
			} else if ft.Kind() == reflect.Struct && ft != reflect.TypeFor[bus.Version]() {
				walk(ft, sub)
			}
		}
	}
	walk(reflect.TypeFor[Contract](), "")
	return out
})
