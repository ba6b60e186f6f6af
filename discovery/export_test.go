package discovery

import (
	"encoding/json"

	"github.com/google/uuid"

	"github.com/registrar-go/registrar/reducer/registration"
)

// EncodeStub is a temporary encoder of the stand-in codec.
func EncodeStub(id uuid.UUID, typ string, st registration.State, version int64) []byte {
	b, err := json.Marshal(snapshot{EntityID: id, Domain: registration.DefaultDomain, State: st, NodeType: typ, Version: version})
	if err != nil {
		panic(err)
	}
	return b
}
