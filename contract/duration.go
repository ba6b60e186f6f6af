package contract

import (
	"fmt"
	"math"
	"time"

	"go.yaml.in/yaml/v3"
)

// Duration is a time.Duration that reads from YAML either as a Go duration
// string ("30s", "1m30s", "-5s") or as a plain integer meaning seconds (30).
// It is written as the Go duration string. A negative Duration parses; it is
// [Contract.Validate] that rejects it, so that it is reported together with
// every other problem.
type Duration time.Duration

// Duration returns d as a time.Duration.
func (d Duration) Duration() time.Duration { return time.Duration(d) }

// String formats d like time.Duration does, e.g. "1m30s".
func (d Duration) String() string { return time.Duration(d).String() }

// MarshalYAML writes d as a Go duration string.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// UnmarshalYAML reads a Go duration string or whole seconds. A null node
// leaves d unchanged.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n = resolve(n); n == nil || isNull(n) {
		return nil
	}
	v, err := parseDuration(n)
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// maxSeconds is the largest number of whole seconds a Duration holds.
const maxSeconds = math.MaxInt64 / int64(time.Second)

// parseDuration reads a scalar node as a Duration; n is not an alias.
func parseDuration(n *yaml.Node) (Duration, error) {
	if n.Kind != yaml.ScalarNode {
		return 0, fmt.Errorf("want a duration such as \"30s\" or whole seconds, got %s", kindName(n))
	}
	if n.ShortTag() == "!!int" {
		var secs int64
		if err := n.Decode(&secs); err != nil {
			return 0, fmt.Errorf("%s seconds is out of range", n.Value)
		}
		if secs > maxSeconds || secs < -maxSeconds {
			return 0, fmt.Errorf("%d seconds is out of range", secs)
		}
		return Duration(time.Duration(secs) * time.Second), nil
	}
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q: want a Go duration such as \"30s\" or \"1m30s\", or whole seconds", truncate(n.Value))
	}
	return Duration(v), nil
}
