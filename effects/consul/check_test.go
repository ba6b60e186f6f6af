package consul_test

import (
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/hashicorp/consul/api"

	"github.com/registrar-go/registrar/effects/consul"
	"github.com/registrar-go/registrar/effects/consul/consultest"
	"github.com/registrar-go/registrar/intent"
	"github.com/registrar-go/registrar/reducer/registration"
)

// TestPassRestoresAMissingCheck: the agent holds the node's service, as
// the projection says, but not its TTL check (an operator or a tool
// removed it). The pass's check update answers 404 and the pass heals;
// the heal must put the check back. Before, the convergence found the
// service equal to the projection and wrote nothing, the pass reported
// Applied, and the service stayed without a check: healthy for Consul
// whatever the node does, and never reaped if registrar goes away.
func TestPassRestoresAMissingCheck(t *testing.T) {
	t.Parallel()
	a := consultest.Start(t)
	store := newProjections(t)
	for _, fenced := range []bool{true, false} {
		cfg := consul.Config{Address: a.Addr}
		if fenced {
			cfg.Projections = store
		}
		eff := newTestEffect(t, cfg)
		p := activeProjection(uuid.New(), "effect", "1.0.0", 1)
		store.set(p)
		exec(t, eff, registerIntent(p), intent.Applied)
		id := registration.ServiceID(p.NodeType, p.EntityID)
		if err := a.Client.Agent().CheckDeregister(consul.CheckID(id)); err != nil {
			t.Fatal(err)
		}
		exec(t, eff, passIntent(p, time.Unix(1000, 0)), intent.Applied)
		if st, _ := checkStatus(t, a, consul.CheckID(id)); st != api.HealthPassing {
			t.Errorf("fenced %t: after the pass the check is %q, want passing", fenced, st)
		}
	}
}
