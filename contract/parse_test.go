package contract

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/registrar-go/registrar/bus"
)

func TestParseStrict(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []byte
		want []string
	}{
		// Unknown keys, at every depth.
		{
			name: "unknown top-level key",
			in:   edited(map[int]string{1: "name: svc\nowner: me"}),
			want: []string{`c.yaml:2:1: unknown key "owner"`},
		},
		{
			name: "unknown key in event_bus",
			in:   edited(map[int]string{10: "  dead_letter_topic: dlq\n  partitions: 12"}),
			want: []string{`c.yaml:11:3: event_bus: unknown key "partitions"`},
		},
		{
			name: "unknown key in a route",
			in:   edited(map[int]string{13: "    event_type: A\n    schema: x"}),
			want: []string{`c.yaml:14:5: consumed_events[0]: unknown key "schema"`},
		},
		{
			name: "unknown key in a version mapping",
			in:   edited(map[int]string{2: "contract_version: {major: 1, micro: 7}"}),
			want: []string{`c.yaml:2:30: contract_version: unknown key "micro"`},
		},
		{
			name: "misspelt key gets a hint",
			in:   edited(map[int]string{29: "  ack_timout: 30s"}),
			want: []string{`c.yaml:29:3: timeouts: unknown key "ack_timout"; did you mean "ack_timeout"?`},
		},
		{
			name: "hyphenated key gets a hint",
			in:   edited(map[int]string{10: "  dead-letter-topic: dlq"}),
			want: []string{
				`c.yaml:4:3: event_bus.dead_letter_topic: missing: messages that can never be processed need a dead-letter topic`,
				`c.yaml:10:3: event_bus: unknown key "dead-letter-topic"; did you mean "dead_letter_topic"?`,
			},
		},
		{
			name: "key in the wrong section gets a hint",
			in:   edited(map[int]string{10: "", 32: "  sweep_interval: 1s\n  dead_letter_topic: dlq"}),
			want: []string{
				`c.yaml:4:3: event_bus.dead_letter_topic: missing: messages that can never be processed need a dead-letter topic`,
				`c.yaml:32:3: timeouts: unknown key "dead_letter_topic"; it belongs under event_bus`,
			},
		},
		{
			name: "route key at the top level gets a hint",
			in:   edited(map[int]string{1: "name: svc\ntopic: x"}),
			want: []string{`c.yaml:2:1: unknown key "topic"; it belongs in the entries of consumed_events or published_events`},
		},
		{
			name: "ONEX-only keys are unknown",
			in:   edited(map[int]string{1: "name: svc\nnode_type: ORCHESTRATOR_GENERIC\nhealth_check: {enabled: true}"}),
			want: []string{
				`c.yaml:2:1: unknown key "node_type"`,
				`c.yaml:3:1: unknown key "health_check"`,
			},
		},
		// Duplicate keys.
		{
			name: "duplicate top-level key",
			in:   edited(map[int]string{2: "contract_version: 1.0.0\nname: other"}),
			want: []string{`c.yaml:3:1: duplicate key "name" (first at line 1)`},
		},
		{
			name: "duplicate nested key",
			in:   edited(map[int]string{32: "  sweep_interval: 1s\n  ack_timeout: 5s"}),
			want: []string{`c.yaml:33:3: timeouts: duplicate key "ack_timeout" (first at line 29)`},
		},
		{
			name: "duplicate routing table key",
			in:   edited(map[int]string{27: "    x.two: eff\n    x.one: other"}),
			want: []string{`c.yaml:28:5: intent_consumption.intent_routing_table["x.one"]: duplicate key (first at line 26)`},
		},
		// Values of the wrong kind.
		{
			name: "string where a list belongs",
			in:   edited(map[int]string{4: "  subscribe_topics: in.a", 5: "", 6: ""}),
			// The routes that name subscribe topics are not reported again.
			want: []string{`c.yaml:4:21: event_bus.subscribe_topics: want a list of strings, got "in.a"`},
		},
		{
			name: "mapping where a string belongs",
			in:   edited(map[int]string{6: "    - {name: in.b}"}),
			want: []string{`c.yaml:6:7: event_bus.subscribe_topics[1]: want a string, got a mapping`},
		},
		{
			name: "list where a mapping belongs",
			in:   edited(map[int]string{28: "timeouts: [30s]", 29: "", 30: "", 31: "", 32: ""}),
			want: []string{`c.yaml:28:11: timeouts: want a mapping, got a list`},
		},
		{
			name: "route that is not a mapping",
			in:   edited(map[int]string{17: "  - out.a", 18: ""}),
			want: []string{`c.yaml:17:5: published_events[0]: want a mapping, got "out.a"`},
		},
		{
			name: "routes that are not a list",
			in:   edited(map[int]string{16: "published_events: {topic: out.a}", 17: "", 18: "", 19: "", 20: ""}),
			want: []string{`c.yaml:16:19: published_events: want a list of {topic, event_type} mappings, got a mapping`},
		},
		{
			name: "routing table that is a list",
			in:   edited(map[int]string{25: "  intent_routing_table: [x.one, x.two]", 26: "", 27: ""}),
			want: []string{`c.yaml:25:25: intent_consumption.intent_routing_table: want a mapping of strings, got a list`},
		},
		{
			name: "the contract is a list",
			in:   []byte("- name: svc\n"),
			want: []string{`c.yaml:1:1: want a mapping, got a list`},
		},
		{
			name: "the contract is a string",
			in:   []byte("just words\n"),
			want: []string{`c.yaml:1:1: want a mapping, got "just words"`},
		},
		{
			name: "non-string key",
			in:   edited(map[int]string{1: "name: svc\n? [a, b]\n: c"}),
			want: []string{`c.yaml:2:3: keys must be strings, got a list`},
		},
		{
			name: "merge key",
			in:   edited(map[int]string{28: "base: &t {ack_timeout: 30s}\ntimeouts:\n  <<: *t"}),
			want: []string{
				`c.yaml:28:1: unknown key "base"`,
				`c.yaml:30:3: timeouts: YAML merge keys (<<) are not supported in a contract`,
			},
		},
		{
			name: "null and merge keys in the routing table",
			in:   edited(map[int]string{27: "    x.two: eff\n    ~: eff\n    <<: {x.three: eff}"}),
			want: []string{
				`c.yaml:28:5: intent_consumption.intent_routing_table: keys must be strings, got null`,
				`c.yaml:29:5: intent_consumption.intent_routing_table: YAML merge keys (<<) are not supported in a contract`,
			},
		},
		// Durations and versions.
		{
			name: "bad durations",
			in: edited(map[int]string{
				29: "  ack_timeout: soon",
				30: "  liveness_interval: 1.5",
				31: "  liveness_window: 99999999999",
				32: "  sweep_interval: [1s]",
			}),
			want: []string{
				`c.yaml:29:16: timeouts.ack_timeout: invalid duration "soon": want a Go duration such as "30s" or "1m30s", or whole seconds`,
				`c.yaml:30:22: timeouts.liveness_interval: invalid duration "1.5": want a Go duration such as "30s" or "1m30s", or whole seconds`,
				`c.yaml:31:20: timeouts.liveness_window: 99999999999 seconds is out of range`,
				`c.yaml:32:19: timeouts.sweep_interval: want a duration such as "30s" or whole seconds, got a list`,
			},
		},
		{
			name: "bad version string",
			in:   edited(map[int]string{2: "contract_version: one"}),
			want: []string{`c.yaml:2:19: contract_version: version "one" is not major.minor.patch: major "one" is not a number`},
		},
		{
			name: "version string with an empty prerelease",
			in:   edited(map[int]string{2: "contract_version: 1.2.3-"}),
			want: []string{`c.yaml:2:19: contract_version: version "1.2.3-": the prerelease after '-' is empty`},
		},
		{
			name: "bad prerelease and build in a version mapping",
			in:   edited(map[int]string{2: "contract_version: {major: 1, prerelease: [rc, 01], build: {a: 1}}"}),
			want: []string{`c.yaml:2:59: contract_version.build: want identifiers ("rc.1" or [rc, 1]), got a mapping`},
		},
		{
			name: "prerelease list with an element that is not one identifier",
			in:   edited(map[int]string{2: "contract_version: {major: 1, prerelease: [rc.1, ~]}"}),
			want: []string{`c.yaml:2:43: contract_version.prerelease[0]: want one identifier of [0-9A-Za-z-], got "rc.1"`},
		},
		{
			name: "prerelease with a leading zero in a version mapping",
			in:   edited(map[int]string{2: "contract_version: {major: 1, prerelease: [rc, 01]}"}),
			want: []string{`c.yaml:2:19: contract_version: version "1.0.0-rc.01": prerelease identifier "01" is numeric with a leading zero`},
		},
		{
			name: "bad version mapping",
			in:   edited(map[int]string{2: "contract_version: {minor: -1, patch: x}"}),
			want: []string{
				`c.yaml:2:19: contract_version: version mapping has no major`,
				`c.yaml:2:27: contract_version.minor: want a whole number ≥ 0, got "-1"`,
				`c.yaml:2:38: contract_version.patch: want a whole number ≥ 0, got "x"`,
			},
		},
		// The input as a whole.
		{name: "empty input", in: nil, want: []string{`c.yaml: empty input: want a contract`}},
		{name: "blank input", in: []byte(" \n\n"), want: []string{`c.yaml: empty input: want a contract`}},
		{name: "only comments", in: []byte("# nothing\n"), want: []string{`c.yaml: empty input: want a contract`}},
		{name: "empty document", in: []byte("---\n"), want: []string{`c.yaml:1:1: empty document: want a contract`}},
		{name: "null document", in: []byte("~\n"), want: []string{`c.yaml:1:1: empty document: want a contract`}},
		{
			name: "two documents",
			in:   append(edited(nil), "---\nname: second\n"...),
			want: []string{`c.yaml:33:1: a second YAML document: a contract file holds exactly one`},
		},
		{
			name: "syntax error",
			in:   edited(map[int]string{7: "  publish_topics: [out.a"}),
			want: []string{`c.yaml:7: did not find expected ',' or ']'`},
		},
		{
			name: "syntax error on the first line",
			in:   []byte("[name: svc\n"),
			want: []string{`c.yaml:1: did not find expected ',' or ']'`},
		},
		{
			name: "tab indentation",
			in:   edited(map[int]string{10: "\tdead_letter_topic: dlq"}),
			want: []string{`c.yaml:10: found a tab character that violates indentation`},
		},
		{
			name: "unknown anchor",
			in:   edited(map[int]string{26: "    x.one: *nope"}),
			want: []string{`c.yaml:26: unknown anchor 'nope' referenced`},
		},
		{
			name: "scanner error",
			in:   edited(map[int]string{10: "  dead_letter_topic: @dlq"}),
			want: []string{`c.yaml:10: found character that cannot start any token`},
		},
		{
			name: "bad indentation",
			in:   edited(map[int]string{10: "   dead_letter_topic: dlq"}),
			want: []string{`c.yaml:10: did not find expected key`},
		},
		{
			name: "invalid UTF-8",
			in:   []byte("name: \xff\n"),
			want: []string{`c.yaml:1: invalid leading UTF-8 octet`},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse("c.yaml", tc.in)
			if c != nil {
				t.Errorf("Parse returned a contract along with %v", err)
			}
			if got := errorLines(err); !slices.Equal(got, tc.want) {
				t.Errorf("errors:\n got  %q\n want %q", got, tc.want)
			}
		})
	}
}

// TestParseVersionForms: contract_version is read whole, prerelease and
// build included, in the string and the mapping form.
func TestParseVersionForms(t *testing.T) {
	want := bus.Version{Major: 1, Minor: 2, Patch: 3, Prerelease: "rc.1", Build: "build.007"}
	for _, v := range []string{
		"1.2.3-rc.1+build.007",
		`"1.2.3-rc.1+build.007"`,
		"{major: 1, minor: 2, patch: 3, prerelease: rc.1, build: build.007}",
		"{major: 1, minor: 2, patch: 3, prerelease: [rc, 1], build: [build, \"007\"]}",
		"{major: 1, minor: 2, patch: 3, prerelease: [rc, 1], build: [build, 007]}",
	} {
		c, err := Parse("c.yaml", edited(map[int]string{2: "contract_version: " + v}))
		if err != nil || c.ContractVersion != want {
			t.Errorf("contract_version: %s: %#v, %v", v, c, err)
		}
	}
	c, err := Parse("c.yaml", edited(map[int]string{2: "contract_version: {major: 1, prerelease: ~, build: []}"}))
	if err != nil || c.ContractVersion != (bus.Version{Major: 1}) {
		t.Errorf("null and empty prerelease and build: %#v, %v", c, err)
	}
}

func TestParseValues(t *testing.T) {
	in := `
name: svc
contract_version: {major: 2, minor: 1}
node_version: "0.3"
description: |
  two
  lines
event_bus:
  subscribe_topics: &in [in.a, in.b]
  publish_topics: [out.a]
  dead_letter_topic: dlq
  consumer_group: svc-workers
consumed_events:
  - {topic: in.a, event_type: A}
published_events:
  - topic: out.a
    event_type: OutA
intent_consumption:
  subscribed_intents: [x.one, x.two]
  intent_routing_table:
    x.one: &eff shared_effect
    x.two: *eff
timeouts:
  ack_timeout: 45
  liveness_interval: 2m
  liveness_window: 0x10
  sweep_interval: 250ms
`
	c, err := Parse("c.yaml", []byte(in))
	if err != nil {
		t.Fatal(err)
	}
	want := &Contract{
		Name:            "svc",
		ContractVersion: bus.Version{Major: 2, Minor: 1},
		NodeVersion:     "0.3",
		Description:     "two\nlines\n",
		EventBus: EventBus{
			SubscribeTopics: []string{"in.a", "in.b"},
			PublishTopics:   []string{"out.a"},
			DeadLetterTopic: "dlq",
			ConsumerGroup:   "svc-workers",
		},
		ConsumedEvents:  []EventRoute{{Topic: "in.a", EventType: "A"}},
		PublishedEvents: []EventRoute{{Topic: "out.a", EventType: "OutA"}},
		IntentConsumption: IntentConsumption{
			SubscribedIntents:  []string{"x.one", "x.two"},
			IntentRoutingTable: map[string]string{"x.one": "shared_effect", "x.two": "shared_effect"},
		},
		Timeouts: Timeouts{
			AckTimeout:       Duration(45 * time.Second),
			LivenessInterval: Duration(2 * time.Minute),
			LivenessWindow:   Duration(16 * time.Second),
			SweepInterval:    Duration(250 * time.Millisecond),
		},
	}
	assertEqual(t, c, want)
	if c.Group() != "svc-workers" {
		t.Errorf("Group() = %q", c.Group())
	}
}

// TestParseAliasedSection checks that a whole section may be an alias.
func TestParseAliasedSection(t *testing.T) {
	in := edited(map[int]string{
		1:  "defaults: &to {ack_timeout: 5s}",
		28: "timeouts: *to",
		29: "", 30: "", 31: "", 32: "",
	})
	_, err := Parse("c.yaml", in)
	// defaults is unknown, and the contract lost its name; the alias itself
	// is fine.
	want := []string{
		`c.yaml:1:1: unknown key "defaults"`,
		`c.yaml:1:1: name: missing: a contract needs a name`,
	}
	if got := errorLines(err); !slices.Equal(got, want) {
		t.Errorf("errors:\n got  %q\n want %q", got, want)
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	if err := os.WriteFile(good, edited(nil), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(good)
	if err != nil {
		t.Fatal(err)
	}
	if c.Name != "svc" {
		t.Errorf("Name = %q", c.Name)
	}

	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, edited(map[int]string{1: "name: svc\nextra: 1"}), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Load(bad)
	var e *Error
	if !errors.As(err, &e) || e.File != bad || e.Line != 2 || e.Column != 1 {
		t.Errorf("Load(bad) = %v, want an *Error at %s:2:1", err, bad)
	}

	_, err = Load(filepath.Join(dir, "missing.yaml"))
	if !errors.Is(err, fs.ErrNotExist) || !strings.HasPrefix(err.Error(), "registrar/contract: ") {
		t.Errorf("Load(missing) = %v, want a registrar/contract error wrapping fs.ErrNotExist", err)
	}
}
