package chaos

import (
	"bytes"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/google/uuid"

	"github.com/registrar-go/registrar/reducer/registration"
)

// The service meta keys the checker compares: the ones every registry
// effect writes (effects/consul's MetaNodeID, MetaNodeVersion and
// MetaGeneration).
const (
	metaNodeID      = "node_id"
	metaNodeVersion = "node_version"
	metaGeneration  = "generation"
)

// Service is a service of the registry, as a topology reads it back.
type Service struct {
	ID, Name string
	Tags     []string
	Address  string
	Port     int
	Meta     map[string]string
}

func (s Service) String() string {
	return fmt.Sprintf("%s (name %s, tags %v, address %s:%d, node_id %s, node_version %q, generation %s)",
		s.ID, s.Name, s.Tags, s.Address, s.Port, s.Meta[metaNodeID], s.Meta[metaNodeVersion], s.Meta[metaGeneration])
}

// WantService returns the service an active projection p is registered
// as, and false for a projection in any other state: id
// registration.ServiceID, name ServiceName, tags ServiceTags, address and
// port from ServiceAddress of its endpoints, and meta node_id,
// node_version and generation.
func WantService(p *registration.Projection) (Service, bool) {
	if p == nil || p.State != registration.StateActive || p.NodeType == "" {
		return Service{}, false
	}
	host, port := registration.ServiceAddress(p.Endpoints)
	return Service{
		ID: registration.ServiceID(p.NodeType, p.EntityID), Name: registration.ServiceName(p.NodeType),
		Tags: registration.ServiceTags(p.NodeType), Address: host, Port: port,
		Meta: map[string]string{
			metaNodeID: p.EntityID.String(), metaNodeVersion: p.NodeVersion,
			metaGeneration: strconv.FormatInt(p.Generation, 10),
		},
	}, true
}

// CheckRegistry compares the registry's services that registrar owns with
// the store's projections: every active projection must have exactly one
// service, the one [WantService] names, and no other service may be
// there. Meta keys other than node_id, node_version and generation are not
// compared. pending, if not nil, holds the entities whose outbox still has
// records; a violation of such an entity says so. The violations are of
// invariant [Registered], ordered by entity.
func CheckRegistry(projections []*registration.Projection, services []Service, pending map[uuid.UUID]bool) []Violation {
	var out []Violation
	add := func(entity uuid.UUID, format string, args ...any) {
		detail := fmt.Sprintf(format, args...)
		if pending[entity] {
			detail += " [the outbox still holds records of it]"
		}
		out = append(out, Violation{Invariant: Registered, Entity: entity, Detail: detail})
	}
	byEntity := map[uuid.UUID]*registration.Projection{}
	for _, p := range projections {
		byEntity[p.EntityID] = p
	}
	got := map[string]Service{}
	for _, s := range services {
		if _, dup := got[s.ID]; dup {
			entity, _ := uuid.Parse(s.Meta[metaNodeID])
			add(entity, "service %s is listed twice", s.ID)
		}
		got[s.ID] = s
	}
	wanted := map[string]bool{}
	for _, p := range projections {
		want, ok := WantService(p)
		if !ok {
			continue
		}
		wanted[want.ID] = true
		s, ok := got[want.ID]
		if !ok {
			add(p.EntityID, "active projection (generation %d, type %s, version %s) has no service %s", p.Generation, p.NodeType, p.NodeVersion, want.ID)
			continue
		}
		if d := diffService(want, s); d != "" {
			add(p.EntityID, "service %s differs from its active projection's (want: projection, got: registry): %s", want.ID, d)
		}
	}
	for _, id := range slices.Sorted(maps.Keys(got)) {
		if wanted[id] {
			continue
		}
		s := got[id]
		entity, err := uuid.Parse(s.Meta[metaNodeID])
		state := "no node id in its meta"
		if err == nil {
			state = "no projection"
			if p := byEntity[entity]; p != nil {
				state = fmt.Sprintf("its projection is %s, generation %d, type %s", p.State, p.Generation, p.NodeType)
				if w, ok := WantService(p); ok {
					state += ", registered as " + w.ID
				}
			}
		}
		add(entity, "service %s is registered, but no active projection names it (%s)", s, state)
	}
	slices.SortStableFunc(out, func(a, b Violation) int { return bytes.Compare(a.Entity[:], b.Entity[:]) })
	return out
}

// diffService lists the fields of got that differ from want's.
func diffService(want, got Service) string {
	var d []string
	field := func(name string, w, g any) {
		if fmt.Sprint(w) != fmt.Sprint(g) {
			d = append(d, fmt.Sprintf("%s %v, got %v", name, w, g))
		}
	}
	field("name", want.Name, got.Name)
	field("tags", want.Tags, got.Tags)
	field("address", want.Address, got.Address)
	field("port", want.Port, got.Port)
	for _, k := range []string{metaNodeID, metaNodeVersion, metaGeneration} {
		w, wok := want.Meta[k]
		g, gok := got.Meta[k]
		if w != g || wok != gok {
			d = append(d, fmt.Sprintf("meta %s %q, got %q (present: %v)", k, w, g, gok))
		}
	}
	return strings.Join(d, "; ")
}
