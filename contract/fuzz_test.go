package contract

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// FuzzParse checks that Parse never panics, that every failure is a
// non-empty Errors of well-formed *Error values, and that whatever parses is
// valid, survives a yaml.Marshal round trip, and is accepted by yaml's own
// strict decoder (Decoder.KnownFields(true)) too; and that what that decoder
// finds an unknown or duplicate key in fails to parse. The seed corpus is in
// testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	f.Add(registrationYAML)
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse("f.yaml", data)
		strictErr := yamlStrict(data)
		if err == nil && strictErr != nil {
			t.Fatalf("Parse accepted what yaml's strict decoder rejects: %v", strictErr)
		}
		if err != nil {
			if c != nil {
				t.Fatalf("Parse returned a contract and an error: %v", err)
			}
			var es Errors
			if !errors.As(err, &es) || len(es) == 0 {
				t.Fatalf("error is not a non-empty Errors: %#v", err)
			}
			for _, e := range es {
				if e == nil || e.Message == "" || e.File != "f.yaml" || e.Line < 0 || e.Column < 0 {
					t.Fatalf("malformed error %#v", e)
				}
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("a parsed contract does not validate: %v", err)
		}
		out, err := yaml.Marshal(c)
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		back, err := Parse("back.yaml", out)
		if err != nil {
			t.Fatalf("the marshalled contract does not parse: %v\n%s", err, out)
		}
		assertEqual(t, back, c)
		d := c.Clone()
		assertEqual(t, d, c)
	})
}

// yamlStrict decodes data with yaml's own strict decoder (KnownFields(true))
// into a mirror of Contract, and returns its error.
func yamlStrict(data []byte) error {
	var mirror struct {
		Name              string            `yaml:"name"`
		ContractVersion   yaml.Node         `yaml:"contract_version"` // "1.2.3" or a mapping
		NodeVersion       string            `yaml:"node_version"`
		Description       string            `yaml:"description"`
		EventBus          EventBus          `yaml:"event_bus"`
		ConsumedEvents    []EventRoute      `yaml:"consumed_events"`
		PublishedEvents   []EventRoute      `yaml:"published_events"`
		IntentConsumption IntentConsumption `yaml:"intent_consumption"`
		Timeouts          Timeouts          `yaml:"timeouts"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	return dec.Decode(&mirror)
}

// TestYAMLStrictAgrees runs the cross-check of FuzzParse on cases where
// yaml's strict decoder fails: Parse must fail too.
func TestYAMLStrictAgrees(t *testing.T) {
	for _, in := range [][]byte{
		edited(map[int]string{1: "name: svc\nowner: me"}),
		edited(map[int]string{10: "  dead_letter_topic: dlq\n  partitions: 12"}),
		edited(map[int]string{13: "    event_type: A\n    schema: x"}),
		edited(map[int]string{2: "contract_version: 1.0.0\nname: other"}),
		edited(map[int]string{29: "  ack_timeout: soon"}),
	} {
		strictErr := yamlStrict(in)
		if strictErr == nil {
			t.Errorf("yaml's strict decoder accepts:\n%s", in)
			continue
		}
		if _, err := Parse("c.yaml", in); err == nil {
			t.Errorf("Parse accepts what yaml rejects (%v)", strings.ReplaceAll(strictErr.Error(), "\n", " "))
		}
	}
	if err := yamlStrict(registrationYAML); err != nil {
		t.Errorf("yaml's strict decoder rejects the default contract: %v", err)
	}
}
