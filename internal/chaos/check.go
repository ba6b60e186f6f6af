package chaos

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/registrar-go/registrar/bus"
	"github.com/registrar-go/registrar/reducer/registration"
	"github.com/registrar-go/registrar/reducer/registration/registrationtest"
)

// Invariant numbers the guarantees the checker tests.
type Invariant int

// The invariants, as the issue "delivery guarantees hold under faults"
// states them.
const (
	// Delivered: every committed input's events were published; an event
	// published more than once has the same envelope id and the same
	// payload bytes every time.
	Delivered Invariant = 1 + iota
	// Sequenced: per entity and output topic, the published events,
	// deduplicated by envelope id, in partition order, are the serial
	// model's (type, envelope id, payload).
	Sequenced
	// Projected: every projection in the store is the serial model's.
	Projected
	// Unblocked: once faults stop, every input partition is consumed to
	// its end.
	Unblocked
	// DeadLettered: the dead letters are exactly the poison messages.
	DeadLettered
	// Registered: the registry's services that registrar owns are exactly
	// those of the store's active projections (checked on topologies that
	// read their registry back: [Topology].Services).
	Registered
)

func (i Invariant) String() string {
	switch i {
	case Delivered:
		return "1 delivered: every committed input's events were published, duplicates identical"
	case Sequenced:
		return "2 sequenced: per entity and topic, the published events are the serial model's"
	case Projected:
		return "3 projected: every projection is the serial model's"
	case Unblocked:
		return "4 unblocked: no partition stays blocked once faults stop"
	case DeadLettered:
		return "5 dead-lettered: the dead letters are exactly the poison messages"
	case Registered:
		return "6 registered: the registry's services are exactly the active projections'"
	}
	return "invariant " + strconv.Itoa(int(i))
}

// Violation is one broken guarantee.
type Violation struct {
	Invariant Invariant
	// Entity is the entity it concerns; uuid.Nil if none.
	Entity uuid.UUID
	// Detail says what was expected and what was found.
	Detail string
}

// Observed is what a run left behind, read back after the system was quiet
// and its members stopped.
type Observed struct {
	// Inputs holds the input topics' messages, by topic and partition.
	Inputs map[string][][]*bus.Message
	// Outputs holds the output topics' messages, by topic and partition.
	Outputs map[string][][]*bus.Message
	// DeadLetters holds the dead-letter topic's messages, by partition.
	DeadLetters [][]*bus.Message
	// Projections holds the store's projections.
	Projections []*registration.Projection
	// Progress is the group's progress on the input topics.
	Progress []PartitionProgress
	// Stuck lists the input partitions the group did not consume to their
	// end.
	Stuck []PartitionProgress
	// RegistryRead says that Services was read: the checker then compares
	// it with Projections ([CheckRegistry]).
	RegistryRead bool
	// Services holds the registry's services that registrar owns.
	Services []Service
	// Pending holds the entities whose outbox records were not relayed;
	// nil if the topology cannot tell.
	Pending map[uuid.UUID]bool
}

// Counts summarizes a check.
type Counts struct {
	Inputs, Poisons       int // real inputs and poison messages in the input log
	Decided               int // inputs the model ran
	ExpectedEvents        int // events of the model
	Published, Distinct   int // event messages on the output topics, and distinct envelope ids
	Duplicates            int // Published - Distinct
	DeadLetters, DLQDupes int // messages on the dead-letter topic, and repeats among them
}

// published is one event message read from an output topic.
type published struct {
	msg *bus.Message
	env *bus.Envelope
}

func (p *published) String() string {
	return fmt.Sprintf("%s %s (%s/%d@%d) payload %s", p.env.EventType, p.env.EnvelopeID, p.msg.Topic, p.msg.Partition, p.msg.Offset, p.env.Payload)
}

// Check tests the invariants against the serial model m of workload w and
// returns every violation, ordered by invariant and entity.
func Check(w *Workload, m *Model, obs *Observed) ([]Violation, Counts) {
	c := &checker{w: w, m: m, obs: obs}
	c.counts.Decided = m.Decided
	c.locate()
	c.unblocked()
	c.deadLettered()
	c.delivered()
	c.sequenced()
	c.projected()
	if obs.RegistryRead {
		c.out = append(c.out, CheckRegistry(obs.Projections, obs.Services, obs.Pending)...)
	}
	slices.SortStableFunc(c.out, func(a, b Violation) int {
		return cmp.Or(cmp.Compare(a.Invariant, b.Invariant), bytes.Compare(a.Entity[:], b.Entity[:]))
	})
	return c.out, c.counts
}

type checker struct {
	w      *Workload
	m      *Model
	obs    *Observed
	out    []Violation
	counts Counts

	// stuckAt maps a stuck partition to its committed offset.
	stuckAt map[partitionKey]int64
	// where locates every input message.
	where map[Identity]*bus.Message
	// byID holds the event messages by envelope id, in read order.
	byID map[uuid.UUID][]*published
	// undead holds the kinds of each entity's poisons that were not
	// dead-lettered: whatever became of them explains other violations.
	undead map[uuid.UUID][]string
}

type partitionKey struct {
	topic     string
	partition int32
}

func (c *checker) add(inv Invariant, entity uuid.UUID, format string, args ...any) {
	c.out = append(c.out, Violation{Invariant: inv, Entity: entity, Detail: fmt.Sprintf(format, args...)})
}

// note returns remarks for reports about an entity: inputs the model left
// out because they were never committed, poison messages of it that were
// not dead-lettered.
func (c *checker) note(entity uuid.UUID) string {
	var s string
	if cause := c.m.Uncommitted[entity]; cause != nil {
		s += fmt.Sprintf(" [inputs from %s on were never committed]", cause)
	}
	if kinds := c.undead[entity]; len(kinds) > 0 {
		kinds = slices.Sorted(slices.Values(kinds))
		s += fmt.Sprintf(" [its poison %s was not dead-lettered]", strings.Join(kinds, ", "))
	}
	return s
}

func (c *checker) locate() {
	c.stuckAt = map[partitionKey]int64{}
	for _, s := range c.obs.Stuck {
		c.stuckAt[partitionKey{s.Topic, s.Partition}] = s.Committed
	}
	c.where = map[Identity]*bus.Message{}
	for _, parts := range c.obs.Inputs {
		for _, msgs := range parts {
			for _, msg := range msgs {
				id := IdentityOf(msg.Topic, msg.Key, msg.Value)
				if c.where[id] == nil {
					c.where[id] = msg
				}
				if _, ok := c.w.Poisons[id]; ok {
					c.counts.Poisons++
				} else {
					c.counts.Inputs++
				}
			}
		}
	}
}

// describeAt describes the input message at offset off of a partition.
func (c *checker) describeAt(topic string, partition int32, off int64) (uuid.UUID, string) {
	parts := c.obs.Inputs[topic]
	if int(partition) >= len(parts) {
		return uuid.Nil, "no such partition read"
	}
	for _, msg := range parts[partition] {
		if msg.Offset != off {
			continue
		}
		entity, _ := uuid.ParseBytes(msg.Key)
		if p := c.w.Poisons[IdentityOf(msg.Topic, msg.Key, msg.Value)]; p != nil {
			return entity, "poison " + p.Poison
		}
		if env, err := bus.DecodeEnvelope(msg.Value); err == nil {
			return entity, fmt.Sprintf("%s (envelope %s, %s)", env.EventType, env.EnvelopeID,
				env.EnvelopeTimestamp.UTC().Format(time.RFC3339Nano))
		}
		return entity, "an undecodable message"
	}
	return uuid.Nil, "not retained"
}

func (c *checker) unblocked() {
	for _, s := range c.obs.Stuck {
		entity, what := c.describeAt(s.Topic, s.Partition, max(s.Committed, 0))
		if p, off := c.poisonFrom(s.Topic, s.Partition, max(s.Committed, 0)); p != nil && off > max(s.Committed, 0) {
			what += fmt.Sprintf("; the first poison from there on is %s at offset %d (entity %s)", p.Poison, off, p.Entity)
		}
		c.add(Unblocked, entity, "partition %s/%d is stuck: committed %d of %d; the message at the committed offset is %s",
			s.Topic, s.Partition, s.Committed, s.End, what)
	}
}

// poisonFrom returns the first poison message of a partition at or after
// offset from, and its offset.
func (c *checker) poisonFrom(topic string, partition int32, from int64) (*Input, int64) {
	parts := c.obs.Inputs[topic]
	if int(partition) >= len(parts) {
		return nil, 0
	}
	for _, msg := range parts[partition] {
		if msg.Offset < from {
			continue
		}
		if p := c.w.Poisons[IdentityOf(msg.Topic, msg.Key, msg.Value)]; p != nil {
			return p, msg.Offset
		}
	}
	return nil, 0
}

func (c *checker) delivered() {
	c.byID = map[uuid.UUID][]*published{}
	for _, topic := range slices.Sorted(maps.Keys(c.obs.Outputs)) {
		for _, msgs := range c.obs.Outputs[topic] {
			for _, msg := range msgs {
				c.counts.Published++
				env, err := bus.DecodeEnvelope(msg.Value)
				if err != nil {
					entity, _ := uuid.ParseBytes(msg.Key)
					c.add(Sequenced, entity, "%s/%d@%d holds an undecodable event: %v", msg.Topic, msg.Partition, msg.Offset, err)
					continue
				}
				c.byID[env.EnvelopeID] = append(c.byID[env.EnvelopeID], &published{msg: msg, env: env})
			}
		}
	}
	c.counts.Distinct = len(c.byID)
	c.counts.Duplicates = c.counts.Published - c.counts.Distinct
	for id, copies := range c.byID {
		first := copies[0]
		for _, p := range copies[1:] {
			if p.msg.Topic != first.msg.Topic || !bytes.Equal(p.env.Payload, first.env.Payload) || p.env.EventType != first.env.EventType {
				entity, _ := uuid.ParseBytes(first.msg.Key)
				same := "the same JSON value in other bytes"
				if !sameJSON(first.env.Payload, p.env.Payload) {
					same = "different JSON values"
				}
				c.add(Delivered, entity, "event %s published twice with different contents (payloads: %s): first %s, then %s", id, same, first, p)
			}
		}
	}
	for _, entity := range sortedIDs(c.m.Events) {
		for _, ev := range c.m.Events[entity] {
			c.counts.ExpectedEvents++
			copies := c.byID[ev.ID]
			if len(copies) == 0 {
				c.add(Delivered, entity, "%s %s of input %s was never published", ev.Type, ev.ID, ev.Cause)
				continue
			}
			if copies[0].msg.Topic != ev.Topic {
				c.add(Sequenced, entity, "%s %s of input %s was published to %s, not %s", ev.Type, ev.ID, ev.Cause, copies[0].msg.Topic, ev.Topic)
			}
		}
	}
}

func (c *checker) sequenced() {
	want := map[uuid.UUID]map[string][]ExpectedEvent{}
	for entity, evs := range c.m.Events {
		for _, ev := range evs {
			if want[entity] == nil {
				want[entity] = map[string][]ExpectedEvent{}
			}
			want[entity][ev.Topic] = append(want[entity][ev.Topic], ev)
		}
	}
	got := map[uuid.UUID]map[string][]*published{}
	seen := map[uuid.UUID]bool{}
	for _, topic := range slices.Sorted(maps.Keys(c.obs.Outputs)) {
		for _, msgs := range c.obs.Outputs[topic] {
			for _, msg := range msgs {
				env, err := bus.DecodeEnvelope(msg.Value)
				if err != nil || seen[env.EnvelopeID] {
					continue
				}
				seen[env.EnvelopeID] = true
				entity, err := uuid.ParseBytes(msg.Key)
				if err != nil {
					c.add(Sequenced, uuid.Nil, "%s/%d@%d is keyed %q, not by an entity id", msg.Topic, msg.Partition, msg.Offset, msg.Key)
					continue
				}
				if got[entity] == nil {
					got[entity] = map[string][]*published{}
				}
				got[entity][topic] = append(got[entity][topic], &published{msg: msg, env: env})
			}
		}
	}
	entities := map[uuid.UUID]bool{}
	for e := range want {
		entities[e] = true
	}
	for e := range got {
		entities[e] = true
	}
	for _, entity := range sortedIDs(entities) {
		topics := map[string]bool{}
		for t := range want[entity] {
			topics[t] = true
		}
		for t := range got[entity] {
			topics[t] = true
		}
		for _, topic := range slices.Sorted(maps.Keys(topics)) {
			c.compareSequence(entity, topic, want[entity][topic], got[entity][topic])
		}
	}
}

func (c *checker) compareSequence(entity uuid.UUID, topic string, want []ExpectedEvent, got []*published) {
	n := max(len(want), len(got))
	for i := range n {
		switch {
		case i >= len(got):
			c.add(Sequenced, entity, "topic %s: %d events published, want %d; event %d, %s %s of input %s, is missing%s",
				topic, len(got), len(want), i, want[i].Type, want[i].ID, want[i].Cause, c.note(entity))
		case i >= len(want):
			c.add(Sequenced, entity, "topic %s: %d events published, want %d; event %d is unexpected: %s%s",
				topic, len(got), len(want), i, got[i], c.note(entity))
		case want[i].ID != got[i].env.EnvelopeID || want[i].Type != got[i].env.EventType || !sameJSON(want[i].Payload, got[i].env.Payload):
			c.add(Sequenced, entity, "topic %s: event %d: want %s %s of input %s payload %s, got %s%s",
				topic, i, want[i].Type, want[i].ID, want[i].Cause, want[i].Payload, got[i], c.note(entity))
		default:
			continue
		}
		return // the first difference says it; the rest follows from it
	}
}

func (c *checker) projected() {
	stored := map[uuid.UUID]*registration.Projection{}
	for _, p := range c.obs.Projections {
		stored[p.EntityID] = p
	}
	entities := map[uuid.UUID]bool{}
	for e := range stored {
		entities[e] = true
	}
	for e := range c.m.Projections {
		entities[e] = true
	}
	for _, entity := range sortedIDs(entities) {
		want, got := micros(c.m.Projections[entity]), micros(stored[entity])
		if d := registrationtest.Diff(want, got); d != "" {
			c.add(Projected, entity, "projection differs from the model's (want: model, got: store): %s%s", d, c.note(entity))
		}
	}
}

// micros returns a copy of p with its times at microsecond precision, the
// precision every store keeps.
func micros(p *registration.Projection) *registration.Projection {
	if p == nil {
		return nil
	}
	q := p.Clone()
	for _, t := range []*time.Time{&q.AckDeadline, &q.LivenessDeadline, &q.LastHeartbeatAt, &q.AckTimeoutEmittedAt,
		&q.LivenessTimeoutEmittedAt, &q.RegisteredAt, &q.UpdatedAt} {
		*t = t.Truncate(time.Microsecond)
	}
	return q
}

func (c *checker) deadLettered() {
	dead := map[Identity]int{}
	for _, msgs := range c.obs.DeadLetters {
		for _, msg := range msgs {
			c.counts.DeadLetters++
			id := IdentityOf(msg.Headers[bus.HeaderDLQOriginalTopic], msg.Key, msg.Value)
			if dead[id]++; dead[id] > 1 {
				c.counts.DLQDupes++
				continue
			}
			if _, ok := c.w.Poisons[id]; ok {
				continue
			}
			entity, _ := uuid.ParseBytes(msg.Key)
			what := "a message that is not among the inputs"
			if in := c.where[id]; in != nil {
				_, what = c.describeAt(in.Topic, in.Partition, in.Offset)
				what = fmt.Sprintf("input %s at %s/%d@%d", what, in.Topic, in.Partition, in.Offset)
			}
			c.add(DeadLettered, entity, "%s was dead-lettered (reason %q); only poison messages may be", what, msg.Headers[bus.HeaderDLQReason])
		}
	}
	for id, p := range c.w.Poisons {
		if dead[id] > 0 {
			continue
		}
		where := "not found in the input log"
		if in := c.where[id]; in != nil {
			where = fmt.Sprintf("at %s/%d@%d", in.Topic, in.Partition, in.Offset)
			if off, stuck := c.stuckAt[partitionKey{in.Topic, in.Partition}]; stuck && in.Offset >= off {
				where += fmt.Sprintf(", never reached: the partition is stuck at %d", off)
			}
		}
		c.add(DeadLettered, p.Entity, "poison %s (%s) was not dead-lettered", p.Poison, where)
		if c.undead == nil {
			c.undead = map[uuid.UUID][]string{}
		}
		c.undead[p.Entity] = append(c.undead[p.Entity], p.Poison)
	}
}

// sameJSON compares two JSON documents as values.
func sameJSON(a, b []byte) bool {
	var va, vb any
	if json.Unmarshal(a, &va) != nil || json.Unmarshal(b, &vb) != nil {
		return bytes.Equal(a, b)
	}
	return reflect.DeepEqual(va, vb)
}

// sortedIDs returns the keys of m in order.
func sortedIDs[V any](m map[uuid.UUID]V) []uuid.UUID {
	return slices.SortedFunc(maps.Keys(m), func(a, b uuid.UUID) int { return bytes.Compare(a[:], b[:]) })
}
