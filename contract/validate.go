package contract

import (
	"fmt"
	"maps"
	"slices"

	"go.yaml.in/yaml/v3"
)

// Validate checks c and reports every problem at once, as an [Errors]; nil
// means c is valid. These are the rules:
//
//   - name is set.
//   - event_bus.subscribe_topics holds at least one topic; neither it nor
//     publish_topics holds an empty topic or one topic twice; no topic is
//     both subscribed and published.
//   - event_bus.dead_letter_topic is set, and is neither a subscribe nor a
//     publish topic.
//   - event_bus.snapshot_topic, unless empty (the default) or "none"
//     ([NoSnapshots]), is neither a subscribe topic nor the dead-letter
//     topic nor the topic of a published_events entry.
//   - Each consumed_events entry has a topic from subscribe_topics and an
//     event type; no topic is consumed twice.
//   - Each published_events entry has a topic from publish_topics and an
//     event type; no event type is published twice.
//   - intent_consumption: no subscribed intent type is empty or listed
//     twice; every subscribed type is routed in intent_routing_table, every
//     routed type is subscribed, and each route names an effect.
//   - No timeout is negative. Zero means the consumer's default;
//     liveness_window may be shorter than liveness_interval.
//
// Errors of a parsed contract carry the file, line and column of the
// offending element; see [Contract] for edited contracts.
func (c *Contract) Validate() error {
	if c == nil {
		return Errors{{Message: "nil contract"}}
	}
	var es Errors
	for _, iss := range c.validate() {
		es = append(es, iss.err)
	}
	return es.err()
}

// matcher reports whether the source node n (nil: absent) still holds the
// contract's value, so that its position may be used in an error.
type matcher func(n *yaml.Node) bool

// equals matches a scalar node holding s; an absent node matches "".
func equals(s string) matcher {
	return func(n *yaml.Node) bool {
		if n == nil {
			return s == ""
		}
		return n.Kind == yaml.ScalarNode && scalarString(n) == s
	}
}

// present matches any node that exists.
func present(n *yaml.Node) bool { return n != nil }

// isDuration matches a node that parses as d.
func isDuration(d Duration) matcher {
	return func(n *yaml.Node) bool {
		if n == nil {
			return d == 0
		}
		got, err := parseDuration(n)
		return err == nil && got == d
	}
}

func scalarString(n *yaml.Node) string {
	if isNull(n) {
		return ""
	}
	return n.Value
}

// source is the parsed YAML of a contract.
type source struct {
	file string
	root *yaml.Node // the top-level mapping
}

// locator finds elements of a source by path. It indexes each mapping it
// searches, so that many lookups in one large mapping stay cheap.
type locator struct {
	src  *source
	keys map[*yaml.Node]map[string]int // mapping -> key -> index in Content
}

// locate returns the position of the element at p, if the source still
// holds what the contract holds there (m; nil matches anything). A map key
// as the last segment gives the key's position. When the element is absent
// and m accepts that, the position of its nearest present ancestor is
// returned instead.
func (l *locator) locate(p path, m matcher) (line, col int) {
	if l.src == nil {
		return 0, 0
	}
	n := l.src.root
	for i, sg := range p {
		n = resolve(n)
		if n == nil {
			return 0, 0
		}
		var next, key *yaml.Node
		switch {
		case sg.kind == segIndex && n.Kind == yaml.SequenceNode:
			if sg.index < len(n.Content) {
				next = n.Content[sg.index]
			}
		case sg.kind != segIndex && n.Kind == yaml.MappingNode:
			if j, ok := l.index(n)[sg.name]; ok {
				key, next = n.Content[j], n.Content[j+1]
			}
		}
		if next == nil {
			if m == nil || m(nil) {
				return n.Line, n.Column
			}
			return 0, 0
		}
		if sg.kind == segKey && i == len(p)-1 {
			if m == nil || m(resolve(next)) {
				return key.Line, key.Column
			}
			return 0, 0
		}
		n = next
	}
	if n = resolve(n); n == nil || (m != nil && !m(n)) {
		return 0, 0
	}
	return n.Line, n.Column
}

// index returns the scalar keys of mapping n and their first positions in
// n.Content.
func (l *locator) index(n *yaml.Node) map[string]int {
	if idx, ok := l.keys[n]; ok {
		return idx
	}
	idx := make(map[string]int, len(n.Content)/2)
	for j := 0; j+1 < len(n.Content); j += 2 {
		if k := resolve(n.Content[j]); k != nil && k.Kind == yaml.ScalarNode {
			if _, dup := idx[k.Value]; !dup {
				idx[k.Value] = j
			}
		}
	}
	if l.keys == nil {
		l.keys = map[*yaml.Node]map[string]int{}
	}
	l.keys[n] = idx
	return idx
}

type validator struct {
	loc    locator
	file   string
	issues []issue
}

// issue is a validation error, the element it is about, and the other
// elements the check consulted.
type issue struct {
	err  *Error
	at   path
	refs []path
}

// add reports a problem of the element at p; m says whether the source
// still holds what the contract holds there. The paths among args are the
// other elements the check consulted.
func (v *validator) add(p path, m matcher, format string, args ...any) {
	e := &Error{File: v.file, Path: p.String(), Message: fmt.Sprintf(format, args...)}
	e.Line, e.Column = v.loc.locate(p, m)
	iss := issue{err: e, at: p}
	for _, a := range args {
		if ref, ok := a.(path); ok {
			iss.refs = append(iss.refs, ref)
		}
	}
	v.issues = append(v.issues, iss)
}

// topics checks a topic list for empty and duplicate topics and returns the
// index of each topic's first occurrence.
func (v *validator) topics(p path, list []string) map[string]int {
	first := make(map[string]int, len(list))
	for i, t := range list {
		if t == "" {
			v.add(p.index(i), equals(t), "empty topic")
			continue
		}
		if j, dup := first[t]; dup {
			v.add(p.index(i), equals(t), "duplicate topic %q (first at %s)", t, p.index(j))
			continue
		}
		first[t] = i
	}
	return first
}

// validate returns every problem of c, unsorted.
func (c *Contract) validate() []issue {
	v := &validator{loc: locator{src: c.src}}
	if c.src != nil {
		v.file = c.src.file
	}
	top := path{}

	if c.Name == "" {
		v.add(top.field("name"), equals(""), "missing: a contract needs a name")
	}

	// Topics.
	eb := top.field("event_bus")
	subP, pubP := eb.field("subscribe_topics"), eb.field("publish_topics")
	if len(c.EventBus.SubscribeTopics) == 0 {
		v.add(subP, nil, "no topics: a contract consumes at least one topic")
	}
	subs := v.topics(subP, c.EventBus.SubscribeTopics)
	pubs := v.topics(pubP, c.EventBus.PublishTopics)
	for i, t := range c.EventBus.PublishTopics {
		if j, ok := subs[t]; ok && pubs[t] == i {
			v.add(pubP.index(i), equals(t), "topic %q is also subscribed (%s): a node must not consume its own output", t, subP.index(j))
		}
	}
	dl, dlP := c.EventBus.DeadLetterTopic, eb.field("dead_letter_topic")
	if dl == "" {
		v.add(dlP, equals(""), "missing: messages that can never be processed need a dead-letter topic")
	} else if j, ok := subs[dl]; ok {
		v.add(dlP, equals(dl), "dead-letter topic %q is also an input topic (%s): dead letters would be consumed again", dl, subP.index(j))
	} else if j, ok := pubs[dl]; ok {
		v.add(dlP, equals(dl), "dead-letter topic %q is also a publish topic (%s)", dl, pubP.index(j))
	}

	snap, snapP := c.EventBus.SnapshotTopic, eb.field("snapshot_topic")
	if snap != "" && snap != NoSnapshots {
		if j, ok := subs[snap]; ok {
			v.add(snapP, equals(snap), "snapshot topic %q is also an input topic (%s): a node must not consume its own output", snap, subP.index(j))
		} else if snap == dl {
			v.add(snapP, equals(snap), "snapshot topic %q is also the dead-letter topic", snap)
		}
		for i, r := range c.PublishedEvents {
			if r.Topic == snap {
				v.add(snapP, equals(snap), "snapshot topic %q is also the topic of %s (%s): compaction would drop its events",
					snap, r.EventType, top.field("published_events").index(i))
				break
			}
		}
	}

	// Event routes.
	ceP := top.field("consumed_events")
	consumed := map[string]int{}
	for i, r := range c.ConsumedEvents {
		p := ceP.index(i)
		switch _, subscribed := subs[r.Topic]; {
		case r.Topic == "":
			v.add(p.field("topic"), equals(""), "missing")
		case !subscribed:
			v.add(p.field("topic"), equals(r.Topic), "topic %q is not in %s", r.Topic, subP)
		}
		if j, dup := consumed[r.Topic]; dup && r.Topic != "" {
			v.add(p.field("topic"), equals(r.Topic), "topic %q is consumed twice (first at %s)", r.Topic, ceP.index(j))
		} else {
			consumed[r.Topic] = i
		}
		if r.EventType == "" {
			v.add(p.field("event_type"), equals(""), "missing")
		}
	}
	peP := top.field("published_events")
	published := map[string]int{}
	for i, r := range c.PublishedEvents {
		p := peP.index(i)
		switch _, ok := pubs[r.Topic]; {
		case r.Topic == "":
			v.add(p.field("topic"), equals(""), "missing")
		case !ok:
			v.add(p.field("topic"), equals(r.Topic), "topic %q is not in %s", r.Topic, pubP)
		}
		switch j, dup := published[r.EventType]; {
		case r.EventType == "":
			v.add(p.field("event_type"), equals(""), "missing")
		case dup:
			v.add(p.field("event_type"), equals(r.EventType), "duplicate event type %q (first at %s)", r.EventType, peP.index(j))
		default:
			published[r.EventType] = i
		}
	}

	// Intents.
	ic := top.field("intent_consumption")
	siP, rtP := ic.field("subscribed_intents"), ic.field("intent_routing_table")
	table := c.IntentConsumption.IntentRoutingTable
	subscribed := map[string]int{}
	for i, t := range c.IntentConsumption.SubscribedIntents {
		p := siP.index(i)
		if t == "" {
			v.add(p, equals(t), "empty intent type")
			continue
		}
		if j, dup := subscribed[t]; dup {
			v.add(p, equals(t), "duplicate intent type %q (first at %s)", t, siP.index(j))
			continue
		}
		subscribed[t] = i
		if _, routed := table[t]; !routed {
			v.add(p, equals(t), "intent type %q is subscribed but not routed in %s", t, rtP)
		}
	}
	for _, t := range slices.Sorted(maps.Keys(table)) {
		p := rtP.key(t)
		if t == "" {
			v.add(p, present, "empty intent type")
		} else if _, ok := subscribed[t]; !ok {
			v.add(p, present, "intent type %q is routed but not in %s", t, siP)
		}
		if table[t] == "" {
			v.add(p, equals(""), "intent type %q is routed to no effect", t)
		}
	}

	// Timeouts.
	tp := top.field("timeouts")
	for _, f := range []struct {
		name string
		d    Duration
	}{
		{"ack_timeout", c.Timeouts.AckTimeout},
		{"liveness_interval", c.Timeouts.LivenessInterval},
		{"liveness_window", c.Timeouts.LivenessWindow},
		{"sweep_interval", c.Timeouts.SweepInterval},
	} {
		if f.d < 0 {
			v.add(tp.field(f.name), isDuration(f.d), "negative duration %v", f.d)
		}
	}
	return v.issues
}
