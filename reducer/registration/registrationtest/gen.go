package registrationtest

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"math/rand/v2"
	"time"

	"github.com/google/uuid"
	"pgregory.net/rapid"

	"github.com/registrar-go/registrar/intent"
	"github.com/registrar-go/registrar/reducer/registration"
)

// baseTime is the origin of the generated times: microsecond precision,
// as PostgreSQL stores them.
var baseTime = time.Date(2025, 3, 4, 5, 6, 7, 123456000, time.UTC)

// otherZone writes some generated times in a zone other than UTC.
var otherZone = time.FixedZone("UTC+5:30", 5*3600+1800)

// gen generates intents whose choices come from pick (rapid draws or a
// seeded source), biased by the model's rows so that guards pass and fail
// alike.
type gen struct {
	pick   func(n int, label string) int
	model  *Model
	domain string
	seq    uint64
}

func rapidGen(t *rapid.T, m *Model, domain string) *gen {
	return &gen{pick: func(n int, label string) int { return rapid.IntRange(0, n-1).Draw(t, label) }, model: m, domain: domain}
}

func seededGen(seed uint64, m *Model, domain string) *gen {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)) //nolint:gosec // a reproducible workload, not a secret
	return &gen{pick: func(n int, _ string) int { return r.IntN(n) }, model: m, domain: domain}
}

func (g *gen) chance(num, den int, label string) bool { return g.pick(den, label) < num }

// tm returns a time: NULL, or one of a few instants a second apart, some in
// another zone.
func (g *gen) tm(label string) time.Time {
	k := g.pick(8, label)
	if k == 0 {
		return time.Time{}
	}
	t := baseTime.Add(time.Duration(k-1) * time.Second)
	if k%3 == 0 {
		t = t.In(otherZone)
	}
	return t
}

// heartbeat returns a heartbeat time older than, equal to or newer than
// cur, or NULL.
func (g *gen) heartbeat(cur time.Time) time.Time {
	if cur.IsZero() {
		cur = baseTime.Add(3 * time.Second)
	}
	switch g.pick(6, "heartbeat") {
	case 0:
		return cur.Add(-time.Second)
	case 1:
		return cur
	case 2:
		return cur.Add(time.Microsecond)
	case 3:
		return time.Time{}
	}
	return cur.Add(time.Duration(1+g.pick(3, "heartbeat step")) * time.Second)
}

func (g *gen) state(label string) registration.State {
	all := registration.States()
	if g.chance(1, 3, label+" bias") {
		return registration.StateActive
	}
	return all[g.pick(len(all), label)]
}

var capsPool = []json.RawMessage{
	nil,
	json.RawMessage(`{}`),
	json.RawMessage(`{"a":1}`),
	json.RawMessage(`{ "b": [1, 2.5, {"c": "d"}], "a": true, "n": null }`),
	json.RawMessage(`{"ü": "✓", "nested": {"z": 1, "y": [ ]}}`),
	json.RawMessage(`[1, "two"]`),
}

func (g *gen) caps() json.RawMessage {
	c := capsPool[g.pick(len(capsPool), "capabilities")]
	if c == nil {
		return nil
	}
	return append(json.RawMessage{}, c...)
}

func (g *gen) endpoints() map[string]string {
	switch g.pick(4, "endpoints") {
	case 0:
		return nil
	case 1:
		return map[string]string{}
	case 2:
		return map[string]string{"api": "http://node-a:8080"}
	}
	return map[string]string{"health": "http://node-b:9090/health", "api": "https://node-b/api"}
}

var idPool = []uuid.UUID{
	uuid.MustParse("00000000-0000-4000-8000-000000000001"),
	uuid.MustParse("6f1b7a52-1c2d-4e3f-9a8b-7c6d5e4f3a2b"),
	uuid.MustParse("ffffffff-ffff-4fff-bfff-ffffffffffff"),
}

func (g *gen) id(label string) uuid.UUID {
	k := g.pick(len(idPool)+1, label)
	if k == 0 {
		return uuid.Nil
	}
	return idPool[k-1]
}

// values returns a projection with every column drawn.
func (g *gen) values(id uuid.UUID) registration.Projection {
	types := []string{"effect", "compute", "reducer"}
	versions := []string{"1.0.0", "2.1.3", "", "1.2.3-rc.1+build.5"}
	return registration.Projection{
		EntityID: id, Domain: g.domain, State: g.state("state"),
		NodeType: types[g.pick(len(types), "node_type")], NodeVersion: versions[g.pick(len(versions), "node_version")],
		Capabilities: g.caps(), Endpoints: g.endpoints(),
		AckDeadline: g.tm("ack_deadline"), LivenessDeadline: g.tm("liveness_deadline"),
		LastHeartbeatAt: g.tm("last_heartbeat_at"), AckTimeoutEmittedAt: g.tm("ack_timeout_emitted_at"),
		LivenessTimeoutEmittedAt: g.tm("liveness_timeout_emitted_at"), LastAppliedEventID: g.id("last_applied_event_id"),
		RegisteredAt: g.tm("registered_at"), UpdatedAt: g.tm("updated_at"), CorrelationID: g.id("correlation_id"),
		Generation: int64(g.pick(4, "generation")),
	}
}

// expected returns the state a write expects: mostly the row's own (the
// guard holds), sometimes another.
func (g *gen) expected(cur *registration.Projection, allowNone bool) registration.State {
	st := registration.StateNone
	if cur != nil {
		st = cur.State
	}
	switch g.pick(3, "expected") {
	case 0:
		return st
	case 1:
		if allowNone {
			return registration.StateNone
		}
		return st
	}
	all := registration.States()
	k := g.pick(len(all)+1, "expected state")
	if k == len(all) {
		return registration.StateNone
	}
	return all[k]
}

func (g *gen) correlation() uuid.UUID {
	g.seq++
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], g.seq)
	return uuid.NewSHA1(uuid.NameSpaceOID, b[:])
}

// heartbeatColumns is the column set of the reducer's heartbeat update.
const heartbeatColumns = registration.ColLastHeartbeatAt | registration.ColLivenessDeadline | registration.ColUpdatedAt

// intent generates one intent on one of ids: an upsert, a heartbeat-shaped
// update, or an update of random columns.
func (g *gen) intent(ids []uuid.UUID) intent.Intent {
	id := ids[g.pick(len(ids), "entity")]
	cur := g.model.Row(id, g.domain)
	corr := g.correlation()
	switch g.pick(3, "kind") {
	case 0:
		p := g.values(id)
		var cols registration.Columns
		switch g.pick(4, "upsert columns") {
		case 1:
			cols = registration.AllColumns
		case 2:
			cols = registration.ColNodeType | registration.ColNodeVersion | registration.ColCapabilities |
				registration.ColEndpoints | registration.ColUpdatedAt
		case 3:
			cols = registration.Columns(g.pick(int(registration.AllColumns), "upsert column mask") + 1)
		}
		return intent.Intent{Type: registration.IntentUpsert, Target: id.String(), CorrelationID: corr,
			Payload: &registration.UpsertRegistration{Projection: p, Columns: cols, ExpectedState: g.expected(cur, true), CorrelationID: corr}}
	case 1:
		var hb, dl time.Time
		if cur != nil {
			hb, dl = cur.LastHeartbeatAt, cur.LivenessDeadline
		}
		v := registration.Projection{LastHeartbeatAt: g.heartbeat(hb), UpdatedAt: g.tm("updated_at")}
		v.LivenessDeadline = v.LastHeartbeatAt.Add(90 * time.Second)
		if v.LastHeartbeatAt.IsZero() {
			v.LivenessDeadline = dl
		}
		exp := registration.StateActive
		if g.chance(1, 4, "heartbeat expects none") {
			exp = registration.StateNone
		}
		u := &registration.UpdateRegistration{EntityID: id, Domain: g.domain, Set: heartbeatColumns, Values: v, ExpectedState: exp, CorrelationID: corr}
		if g.chance(1, 2, "heartbeat guard") {
			// The reducer's heartbeat guard, holding or not.
			u.Guard, u.Expected = registration.ColLivenessDeadline|registration.ColUpdatedAt, g.guardValues(cur)
		}
		return intent.Intent{Type: registration.IntentUpdate, Target: id.String(), CorrelationID: corr, Payload: u}
	}
	set := registration.Columns(g.pick(int(registration.AllColumns), "update column mask") + 1)
	v := g.values(id)
	if set.Has(registration.ColLastHeartbeatAt) {
		var hb time.Time
		if cur != nil {
			hb = cur.LastHeartbeatAt
		}
		v.LastHeartbeatAt = g.heartbeat(hb)
	}
	u := &registration.UpdateRegistration{EntityID: id, Domain: g.domain, Set: set, Values: v, ExpectedState: g.expected(cur, true), CorrelationID: corr}
	if g.chance(1, 2, "guard") {
		u.Guard = registration.Columns(g.pick(int(registration.AllColumns), "guard mask")+1) & registration.GuardableColumns
		u.Expected = g.guardValues(cur)
	}
	return intent.Intent{Type: registration.IntentUpdate, Target: id.String(), CorrelationID: corr, Payload: u}
}

// guardValues returns the values a guard expects: mostly the row's own
// (the guard holds), in another zone sometimes, else drawn.
func (g *gen) guardValues(cur *registration.Projection) registration.Projection {
	if cur == nil || g.chance(1, 4, "guard values drawn") {
		return g.values(uuid.Nil)
	}
	p := *cur.Clone()
	if g.chance(1, 3, "guard values zoned") {
		zoned(&p)
	}
	return p
}

// Workload returns n valid upsert and update intents on the entities ids
// in the domain registration.DefaultDomain, the same for the same seed:
// inserts, re-registrations, metadata refreshes, heartbeats (older, equal
// and newer than the stored one), state changes, with expected states that
// mostly hold, JSON capabilities and endpoints, NULL and zoned times, all
// with microsecond precision. The guards decide differently along the
// way, so the order of the intents matters: replaying them in another order
// gives other rows. Execute them on a [Model] to know the rows they should
// leave.
func Workload(seed uint64, ids []uuid.UUID, n int) []intent.Intent {
	m := NewModel()
	g := seededGen(seed, m, registration.DefaultDomain)
	out := make([]intent.Intent, 0, n)
	for range n {
		in := g.intent(ids)
		_, _ = m.Execute(context.Background(), in)
		out = append(out, in)
	}
	return out
}
