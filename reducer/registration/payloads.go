package registration

import (
	"encoding/json"
	"fmt"
)

// DecodeIntentPayload decodes the JSON payload of a recorded consul.*
// intent (as the runtime's outbox keeps it) into its typed value:
// *[ConsulRegister], *[ConsulDeregister] or *[ConsulPassTTL]. Other intent
// types, and payloads that do not decode, are errors.
func DecodeIntentPayload(intentType string, payload json.RawMessage) (any, error) {
	var v any
	switch intentType {
	case IntentConsulReg:
		v = &ConsulRegister{}
	case IntentConsulDereg:
		v = &ConsulDeregister{}
	case IntentConsulPassTTL:
		v = &ConsulPassTTL{}
	default:
		return nil, fmt.Errorf("registrar/registration: intent type %q has no recorded payload type", intentType)
	}
	if err := json.Unmarshal(payload, v); err != nil {
		return nil, fmt.Errorf("registrar/registration: decode %s payload: %w", intentType, err)
	}
	return v, nil
}

// DecodeIntentPayload implements reducer.IntentDecoder with the package's
// [DecodeIntentPayload].
func (r *Reducer) DecodeIntentPayload(intentType string, payload json.RawMessage) (any, error) {
	return DecodeIntentPayload(intentType, payload)
}
