package postgres

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/registrar-go/registrar/reducer/registration"
)

// A batch is sent as one pgx.Batch of statements; each statement covers
// the intents [from, to) of the batch: one intent (a single guarded
// statement) or a run of same-shaped intents on distinct entities (one
// statement over arrays).
type span struct{ from, to int }

func (s span) arrays() bool { return s.to-s.from > 1 }

type rowKey struct {
	id     uuid.UUID
	domain string
}

// spans splits n intents into statements: one per intent for
// BatchStatements; for BatchArrays, maximal runs whose intents have the
// same shape and name each row at most once, so that a run can be one
// statement and a repeated entity sees its earlier write.
func spans[S comparable](strategy BatchStrategy, n int, shape func(int) S, key func(int) rowKey) []span {
	out := make([]span, 0, 1)
	if strategy == BatchStatements {
		for i := range n {
			out = append(out, span{i, i + 1})
		}
		return out
	}
	seen := make(map[rowKey]struct{}, n)
	from := 0
	for i := range n {
		k := key(i)
		_, dup := seen[k]
		if i > from && (dup || shape(i) != shape(from)) {
			out = append(out, span{from, i})
			from = i
			clear(seen)
		}
		seen[k] = struct{}{}
	}
	if n > from {
		out = append(out, span{from, n})
	}
	return out
}

// arrayType is the SQL array type a column's values travel in, and the
// cast from its element to the column's type.
func arrayType(c registration.Columns, n names) (array, cast string) {
	switch c {
	case registration.ColCurrentState:
		return "text[]", "::" + n.stateType
	case registration.ColNodeType, registration.ColNodeVersion:
		return "text[]", ""
	case registration.ColCapabilities, registration.ColEndpoints:
		return "text[]", "::jsonb"
	case registration.ColLastAppliedEventID, registration.ColCorrelationID:
		return "uuid[]", ""
	case registration.ColGeneration:
		return "int8[]", ""
	}
	return "timestamptz[]", ""
}

// columnArray collects column c of n projections as a slice pgx encodes as
// arrayType(c).
func columnArray(c registration.Columns, n int, row func(int) *registration.Projection) (any, error) {
	switch c {
	case registration.ColCurrentState, registration.ColNodeType, registration.ColNodeVersion:
		out := make([]string, n)
		for i := range n {
			out[i] = row(i).Value(c).(string)
		}
		return out, nil
	case registration.ColCapabilities:
		out := make([]string, n)
		for i := range n {
			out[i] = string(row(i).Value(c).(json.RawMessage))
		}
		return out, nil
	case registration.ColEndpoints:
		out := make([]string, n)
		for i := range n {
			b, err := json.Marshal(row(i).Value(c))
			if err != nil {
				return nil, fmt.Errorf("column endpoints: %w", err)
			}
			out[i] = string(b)
		}
		return out, nil
	case registration.ColLastAppliedEventID:
		out := make([]pgtype.UUID, n)
		for i := range n {
			out[i] = pgUUID(row(i).LastAppliedEventID)
		}
		return out, nil
	case registration.ColCorrelationID:
		out := make([]pgtype.UUID, n)
		for i := range n {
			out[i] = pgUUID(row(i).CorrelationID)
		}
		return out, nil
	case registration.ColGeneration:
		out := make([]int64, n)
		for i := range n {
			out[i] = row(i).Generation
		}
		return out, nil
	}
	out := make([]pgtype.Timestamptz, n)
	for i := range n {
		if t := timeOf(row(i), c); !t.IsZero() {
			out[i] = pgtype.Timestamptz{Time: t, Valid: true}
		}
	}
	return out, nil
}

// timeOf returns the value of time column c of p, without boxing it as
// Projection.Value does.
func timeOf(p *registration.Projection, c registration.Columns) time.Time {
	switch c {
	case registration.ColAckDeadline:
		return p.AckDeadline
	case registration.ColLivenessDeadline:
		return p.LivenessDeadline
	case registration.ColLastHeartbeatAt:
		return p.LastHeartbeatAt
	case registration.ColAckTimeoutEmittedAt:
		return p.AckTimeoutEmittedAt
	case registration.ColLivenessTimeoutEmittedAt:
		return p.LivenessTimeoutEmittedAt
	case registration.ColRegisteredAt:
		return p.RegisteredAt
	case registration.ColUpdatedAt:
		return p.UpdatedAt
	}
	panic("registrar/postgres: timeOf: " + c.String() + " is not a time column")
}

// ords numbers the intents of a span for the arrays statements' results.
func ords(sp span) []int32 {
	out := make([]int32, sp.to-sp.from)
	for i := range out {
		out[i] = int32(sp.from + i)
	}
	return out
}

// batchError wraps the failure of a batch with the intent whose statement
// failed (the first of its span).
func batchError(op string, i int, id, corr uuid.UUID, err error) error {
	return fmt.Errorf("registrar/postgres: %s batch: intent %d: %s %s (correlation %s): %w", op, i, op, id, corr, classify(err))
}

// pgUUID is id as a bind parameter: binary, without going through its
// string form (uuid.UUID is a driver.Valuer that pgx would call).
func pgUUID(id uuid.UUID) pgtype.UUID { return pgtype.UUID{Bytes: id, Valid: id != uuid.Nil} }

// arg converts a column value of registration.Projection.Value to a bind
// parameter.
func arg(v any) any {
	if id, ok := v.(uuid.UUID); ok {
		return pgUUID(id)
	}
	return v
}
