package contract

import (
	"bytes"
	_ "embed" // for the default contract
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"go.yaml.in/yaml/v3"
)

//go:embed registration.yaml
var registrationYAML []byte

// defaultFile is the file name errors about the default contract carry.
const defaultFile = "registration.yaml"

var defaultContract = sync.OnceValue(func() *Contract {
	c, err := Parse(defaultFile, registrationYAML)
	if err != nil {
		// The embedded file is part of the build and tested; this is a
		// broken invariant, not bad input.
		panic("registrar/contract: the embedded default contract is invalid:\n" + err.Error())
	}
	return c
})

// Default returns the default registration contract, the one embedded from
// registration.yaml: the ONEX registration topics, the six registration
// intent types routed to node_registry_effect, and the default timeouts. It
// is parsed once; each call returns a new deep copy that the caller may edit.
func Default() *Contract {
	return defaultContract().Clone()
}

// Load reads the contract file at path and parses it with [Parse], naming
// path in errors.
func Load(path string) (*Contract, error) {
	data, err := os.ReadFile(path) //nolint:gosec // G304: reading the file the caller names is the point.
	if err != nil {
		return nil, fmt.Errorf("registrar/contract: %w", err)
	}
	return Parse(path, data)
}

// Parse decodes one YAML contract and validates it. filename is used only in
// errors.
//
// Parsing is strict. Each of these is an error: invalid YAML, empty input,
// more than one YAML document, a key the contract does not define (at any
// depth), a key given twice, a value of the wrong kind (a list where a
// string belongs, a duration that does not parse), and YAML merge keys
// ("<<"). Anchors and aliases are allowed.
//
// The error is an [Errors] that holds every problem found, decoding and
// validation alike, each with its position; a nil error means the contract
// is valid. Validation problems of an element that did not decode, or that
// involve one, are left out, as they would only repeat it.
func Parse(filename string, data []byte) (*Contract, error) {
	root, perr := parseDocument(filename, data)
	if perr != nil {
		return nil, perr
	}
	d := newDecoder(filename, root)
	var c Contract
	d.decodeContract(root, &c)
	if d.overspent != nil {
		return nil, Errors{d.overspent}
	}
	c.src = &source{file: filename, root: root}
	errs := d.errs
	for _, iss := range c.validate() {
		if !d.suppresses(iss) {
			errs = append(errs, iss.err)
		}
	}
	if err := errs.err(); err != nil {
		return nil, err
	}
	return &c, nil
}

// parseDocument parses data into a yaml.Node tree and returns the contract's
// top-level node, which is not null.
func parseDocument(file string, data []byte) (*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, Errors{{File: file, Message: "empty input: want a contract"}}
		}
		return nil, yamlError(file, data, err)
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case errors.Is(err, io.EOF):
	case err != nil:
		return nil, yamlError(file, data, err)
	default:
		return nil, Errors{{File: file, Line: extra.Line, Column: extra.Column,
			Message: "a second YAML document: a contract file holds exactly one"}}
	}
	var root *yaml.Node
	if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
		root = resolve(doc.Content[0])
	}
	if root == nil || isNull(root) {
		return nil, Errors{{File: file, Line: doc.Line, Column: doc.Column, Message: "empty document: want a contract"}}
	}
	return root, nil
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// parserProblems are the problems the YAML parser (as opposed to its
// scanner) reports. yaml v3 gives their lines zero-based, and no line at
// all for the first one, so Parse adds one.
var parserProblems = map[string]bool{
	"did not find expected ',' or ']'":       true,
	"did not find expected ',' or '}'":       true,
	"did not find expected '-' indicator":    true,
	"did not find expected <document start>": true,
	"did not find expected <stream-start>":   true,
	"did not find expected key":              true,
	"did not find expected node content":     true,
	"found duplicate %TAG directive":         true,
	"found duplicate %YAML directive":        true,
	"found incompatible YAML document":       true,
	"found undefined tag handle":             true,
}

// yamlError turns a YAML syntax error in data into an Errors with its line.
func yamlError(file string, data []byte, err error) Errors {
	e := &Error{File: file, Message: problemOf(err)}
	if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
		e.Line, _ = strconv.Atoi(m[1])
	}
	if parserProblems[e.Message] {
		e.Line++
	}
	e.Line = refineLine(data, e.Line, e.Message)
	return Errors{e}
}

// refineLine returns the line of a syntax error more precisely than yaml
// does. yaml reports the line where the enclosing construct starts (a block
// mapping, a flow list), which can be far above the offending line, and no
// line at all for some errors. The offending line is the first one at or
// after that at which a prefix of data fails with the same problem; it is
// found by bisection, in O(log n) parses. If no prefix fails like data
// does, line is returned unchanged.
func refineLine(data []byte, line int, problem string) int {
	// ends[k] is the length of the first k+1 lines.
	var ends []int
	for i, b := range data {
		if b == '\n' {
			ends = append(ends, i+1)
		}
	}
	if len(ends) == 0 || ends[len(ends)-1] != len(data) {
		ends = append(ends, len(data))
	}
	failsAt := func(k int) bool { // the first k lines fail like data
		err := syntaxError(data[:ends[k-1]])
		return err != nil && problemOf(err) == problem
	}
	// An error at the end of input is on the last line.
	lo, hi := min(max(line, 1), len(ends)), len(ends)
	if !failsAt(hi) {
		return line
	}
	for lo < hi {
		mid := lo + (hi-lo)/2
		if failsAt(mid) {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return lo
}

// syntaxError returns the first error of parsing every document of data.
func syntaxError(data []byte) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var n yaml.Node
		if err := dec.Decode(&n); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
}

// problemOf strips the "yaml: line N: " prefix from a yaml error.
func problemOf(err error) string {
	if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
		return m[2]
	}
	return strings.TrimPrefix(err.Error(), "yaml: ")
}

// resolve follows aliases to the node they name; nil if there is none.
func resolve(n *yaml.Node) *yaml.Node {
	// An anchor cannot name an alias, so one step is all there is; the
	// bound only guards against a malformed tree.
	for range 8 {
		if n == nil || n.Kind != yaml.AliasNode {
			return n
		}
		n = n.Alias
	}
	return nil
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// kindName describes n for "want X, got Y" messages.
func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if isNull(n) {
			return "null"
		}
		return strconv.Quote(truncate(n.Value))
	case yaml.AliasNode:
		return "an alias"
	default:
		return "nothing usable"
	}
}

func truncate(s string) string {
	const max = 64
	if len(s) <= max {
		return s
	}
	return s[:max] + "..."
}
