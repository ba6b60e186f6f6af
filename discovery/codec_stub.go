package discovery

// TEMPORARY stand-in for the snapshot codec of reducer/registration (branch
// snapshot); removed when that branch is merged.

import (
	"encoding/json"
	"errors"
	"time"

	"github.com/google/uuid"

	"github.com/registrar-go/registrar/bus"
	"github.com/registrar-go/registrar/reducer/registration"
)

const topicSnapshot = "onex.snapshot.platform.registration-snapshots.v1"

type snapshot struct {
	EntityID           uuid.UUID
	Domain             string
	State              registration.State
	NodeType, NodeName string
	Capabilities       json.RawMessage
	LastStateChangeAt  time.Time
	Version            int64
	CreatedAt          time.Time
	NodeVersion        string
	Endpoints          map[string]string
	Generation         int64
	RegisteredAt       time.Time
	LivenessDeadline   time.Time
	LastHeartbeatAt    time.Time
}

func decodeSnapshot(msg *bus.Message) (*snapshot, bool, error) {
	if msg.Value == nil {
		return nil, true, nil
	}
	var s snapshot
	if err := json.Unmarshal(msg.Value, &s); err != nil {
		return nil, false, err
	}
	if s.EntityID == uuid.Nil {
		return nil, false, errors.New("no entity id")
	}
	return &s, false, nil
}

func decodeSnapshotKey(key []byte) (uuid.UUID, error) { return uuid.ParseBytes(key) }
