//go:build goexperiment.jsonv2

package main

import (
	"encoding/json/jsontext"
	jsonv2 "encoding/json/v2"
)

// encoding/json/v2 exists only with GOEXPERIMENT=jsonv2 in Go 1.26. It is
// measured with the options that give encoding/json's matching of keys:
// case-insensitive names and duplicate names allowed (v2 rejects them by
// default, and matches names exactly).
func init() {
	opts := jsonv2.JoinOptions(jsonv2.MatchCaseInsensitiveNames(true), jsontext.AllowDuplicateNames(true))
	extraDecoders = append(extraDecoders, reflectDecoder("encoding/json/v2 (GOEXPERIMENT=jsonv2)",
		func(data []byte, v any) error { return jsonv2.Unmarshal(data, v, opts) }))
}
