// Package jsonobj reads the members of a JSON object without reflection.
//
// The registration workflow decodes every message's envelope and payload;
// with encoding/json's reflection that was most of the CPU a heartbeat cost.
// This package walks an object, validating it in the same pass, hands each
// member's key and raw value to a callback or an iterator (and each element
// of an array to a callback), and converts values to strings and numbers
// with encoding/json's semantics (escapes, invalid UTF-8 replaced by
// U+FFFD, later duplicate keys winning). The decoders keep encoding/json as
// their reference: differential fuzz tests compare the two.
package jsonobj
