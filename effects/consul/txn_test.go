package consul_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/hashicorp/consul/api"

	"github.com/registrar-go/registrar/effects/consul"
	"github.com/registrar-go/registrar/effects/consul/consultest"
	"github.com/registrar-go/registrar/intent"
	"github.com/registrar-go/registrar/reducer/registration"
)

// TestCatalogTxnCannotFenceAgentServices records why the package's fence
// is not Consul's transaction API: its check-and-set service operations
// work on the catalog, and the agent owns the catalog entries of its node.
// A delete-cas of a service registered through the agent succeeds, and the
// agent's anti-entropy puts the service back; a service set in the catalog
// on the agent's node has no agent-side TTL check to pass, and the agent's
// anti-entropy removes it. (A -dev agent syncs within a second here; an
// agent in a cluster within its anti-entropy interval, a minute or more.)
func TestCatalogTxnCannotFenceAgentServices(t *testing.T) {
	t.Parallel()
	a := consultest.Start(t)
	self, err := a.Client.Agent().NodeName()
	if err != nil {
		t.Fatal(err)
	}
	eff := newTestEffect(t, consul.Config{Address: a.Addr})
	node := uuid.New()
	id := registration.ServiceID("effect", node)
	exec(t, eff, intents(node, "effect", 1)[registration.IntentConsulReg], intent.Applied)
	txn := func(ops ...*api.TxnOp) *api.TxnResponse {
		t.Helper()
		ok, resp, _, err := a.Client.Txn().Txn(ops, nil)
		if err != nil || !ok {
			var why []string
			if resp != nil {
				for _, e := range resp.Errors {
					why = append(why, e.What)
				}
			}
			t.Fatalf("txn: ok %t, %v, %v", ok, why, err)
		}
		return resp
	}
	var modify uint64
	eventually(t, 20*time.Second, func() string {
		ok, resp, _, err := a.Client.Txn().Txn(api.TxnOps{{Service: &api.ServiceTxnOp{
			Verb: api.ServiceGet, Node: self, Service: api.AgentService{ID: id, Service: registration.ServiceName("effect")}}}}, nil)
		if err != nil || !ok || len(resp.Results) != 1 || resp.Results[0].Service == nil {
			return "the catalog does not show " + id + " yet"
		}
		modify = resp.Results[0].Service.ModifyIndex
		return ""
	})
	// The check-and-set delete at the index just read succeeds...
	txn(&api.TxnOp{Service: &api.ServiceTxnOp{Verb: api.ServiceDeleteCAS, Node: self,
		Service: api.AgentService{ID: id, Service: registration.ServiceName("effect"), ModifyIndex: modify}}})
	if n := len(catalogInstances(t, a, registration.ServiceName("effect"), id)); n != 0 {
		t.Fatalf("after delete-cas the catalog has %d instances", n)
	}
	// ...but the agent still holds the service, and its TTL check.
	if agentService(t, a, id) == nil {
		t.Fatal("delete-cas in the catalog removed the agent's service")
	}
	// A service set through the catalog on the agent's node is not the
	// agent's: it has no TTL check registrar could pass.
	catalogOnly := registration.ServiceID("effect", uuid.New())
	txn(&api.TxnOp{Service: &api.ServiceTxnOp{Verb: api.ServiceSet, Node: self,
		Service: api.AgentService{ID: catalogOnly, Service: registration.ServiceName("effect"), Tags: []string{"onex"}}}})
	if agentService(t, a, catalogOnly) != nil {
		t.Fatal("a catalog-set service shows on the agent")
	}
	err = a.Client.Agent().UpdateTTLOpts(consul.CheckID(catalogOnly), "", "pass", (&api.QueryOptions{}).WithContext(context.Background()))
	if err == nil {
		t.Fatal("a TTL pass of a catalog-set service's check succeeded")
	}
	start := time.Now()
	defer func() { t.Logf("the agent undid both within %v", time.Since(start).Round(time.Millisecond)) }()
	// The agent's anti-entropy undoes both.
	eventually(t, 4*time.Minute, func() string {
		back := len(catalogInstances(t, a, registration.ServiceName("effect"), id)) == 1
		gone := len(catalogInstances(t, a, registration.ServiceName("effect"), catalogOnly)) == 0
		switch {
		case !back && !gone:
			return "the agent has not synced its node yet"
		case !back:
			return "the agent removed the catalog-only service but did not restore " + id
		case !gone:
			return "the agent restored " + id + " but left the catalog-only service"
		}
		return ""
	})
}
