package consul_test

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/hashicorp/consul/api"

	"github.com/registrar-go/registrar/effects/consul"
	"github.com/registrar-go/registrar/effects/consul/consultest"
	"github.com/registrar-go/registrar/intent"
	"github.com/registrar-go/registrar/reducer/registration"
)

// exec executes in and fails the test on an error or an unexpected status.
func exec(t *testing.T, eff *consul.Effect, in intent.Intent, want intent.Status) intent.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := eff.Execute(ctx, in)
	if err != nil {
		t.Fatalf("%s: %v", in.Type, err)
	}
	if res.Status != want {
		t.Fatalf("%s: %v (%s), want %v", in.Type, res.Status, res.Reason, want)
	}
	return res
}

// eventually retries cond until it returns "" or the deadline passes, then
// fails with its last message. Consul syncs agent state to the catalog
// asynchronously, and the machine may be slow.
func eventually(t *testing.T, timeout time.Duration, cond func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		msg := cond()
		if msg == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", timeout, msg)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// agentService returns the service registered with the agent under id, or nil.
func agentService(t *testing.T, a *consultest.Agent, id string) *api.AgentService {
	t.Helper()
	svcs, err := a.Client.Agent().Services()
	if err != nil {
		t.Fatalf("agent services: %v", err)
	}
	return svcs[id]
}

// catalogInstances returns the catalog's instances of service name with id.
func catalogInstances(t *testing.T, a *consultest.Agent, name, id string) []*api.CatalogService {
	t.Helper()
	all, _, err := a.Client.Catalog().Service(name, "", nil)
	if err != nil {
		t.Fatalf("catalog service %s: %v", name, err)
	}
	var out []*api.CatalogService
	for _, s := range all {
		if s.ServiceID == id {
			out = append(out, s)
		}
	}
	return out
}

func checkStatus(t *testing.T, a *consultest.Agent, checkID string) (status, output string) {
	t.Helper()
	checks, err := a.Client.Agent().Checks()
	if err != nil {
		t.Fatalf("agent checks: %v", err)
	}
	c, ok := checks[checkID]
	if !ok {
		return "", ""
	}
	return c.Status, c.Output
}

func TestEffectAgainstAgent(t *testing.T) {
	t.Parallel()
	a := consultest.Start(t)
	eff := newTestEffect(t, consul.Config{Address: a.Addr, Token: secretToken})

	t.Run("register", func(t *testing.T) {
		node := uuid.New()
		ins := intents(node, "effect", 3)
		exec(t, eff, ins[registration.IntentConsulReg], intent.Applied)
		name, id := registration.ServiceName("effect"), registration.ServiceID("effect", node)
		eventually(t, 20*time.Second, func() string {
			got := catalogInstances(t, a, name, id)
			if len(got) != 1 {
				return "catalog has " + strconv.Itoa(len(got)) + " instances of " + id
			}
			s := got[0]
			var problems []string
			if !slices.Equal(s.ServiceTags, []string{"onex", "node-type:effect"}) {
				problems = append(problems, "tags "+strings.Join(s.ServiceTags, ","))
			}
			wantMeta := map[string]string{"node_id": node.String(), "node_version": "1.2.3", "generation": "3"}
			for k, v := range wantMeta {
				if s.ServiceMeta[k] != v {
					problems = append(problems, "meta "+k+"="+s.ServiceMeta[k])
				}
			}
			if s.ServiceAddress != "10.1.2.3" || s.ServicePort != 8086 {
				problems = append(problems, "address "+s.ServiceAddress+":"+strconv.Itoa(s.ServicePort))
			}
			return strings.Join(problems, "; ")
		})
		eventually(t, 20*time.Second, func() string {
			checks, _, err := a.Client.Health().Checks(name, nil)
			if err != nil {
				return err.Error()
			}
			for _, c := range checks {
				if c.ServiceID != id {
					continue
				}
				if c.CheckID != consul.CheckID(id) || c.Type != "ttl" || c.Status != api.HealthPassing {
					return "check " + c.CheckID + " type " + c.Type + " status " + c.Status
				}
				return ""
			}
			return "no check of " + id + " in the catalog"
		})
	})

	t.Run("re-register is idempotent", func(t *testing.T) {
		node := uuid.New()
		ins := intents(node, "effect", 1)
		for range 3 {
			exec(t, eff, ins[registration.IntentConsulReg], intent.Applied)
		}
		id := registration.ServiceID("effect", node)
		eventually(t, 20*time.Second, func() string {
			if n := len(catalogInstances(t, a, registration.ServiceName("effect"), id)); n != 1 {
				return strconv.Itoa(n) + " instances in the catalog"
			}
			return ""
		})
		checks, err := a.Client.Agent().Checks()
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, c := range checks {
			if c.ServiceID == id {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%d checks for %s, want 1", n, id)
		}
	})

	t.Run("node_version is registered whole", func(t *testing.T) {
		// A semantic version with a prerelease and build metadata, and the
		// longest one bus.ParseVersion accepts (256 bytes; Consul takes
		// meta values up to 512).
		for _, version := range []string{"1.2.3-rc.1+build.5",
			"1.2.3-" + strings.Repeat("a.", 62) + "bcde+" + strings.Repeat("x-", 60) + "y"} {
			node := uuid.New()
			ins := intents(node, "effect", 1)
			ins[registration.IntentConsulReg].Payload.(*registration.ConsulRegister).NodeVersion = version
			exec(t, eff, ins[registration.IntentConsulReg], intent.Applied)
			id := registration.ServiceID("effect", node)
			if s := agentService(t, a, id); s == nil || s.Meta[consul.MetaNodeVersion] != version {
				t.Fatalf("agent service %s: %+v, want node_version %q", id, s, version)
			}
			eventually(t, 20*time.Second, func() string {
				got := catalogInstances(t, a, registration.ServiceName("effect"), id)
				if len(got) != 1 || got[0].ServiceMeta[consul.MetaNodeVersion] != version {
					return "catalog instances of " + id + " lack node_version " + version
				}
				return ""
			})
		}
	})

	t.Run("deregister removes it", func(t *testing.T) {
		node := uuid.New()
		ins := intents(node, "effect", 2)
		id := registration.ServiceID("effect", node)
		exec(t, eff, ins[registration.IntentConsulReg], intent.Applied)
		exec(t, eff, ins[registration.IntentConsulDereg], intent.Applied)
		if s := agentService(t, a, id); s != nil {
			t.Fatalf("service %s still registered with the agent", id)
		}
		if st, _ := checkStatus(t, a, consul.CheckID(id)); st != "" {
			t.Fatalf("check of %s still registered (%s)", id, st)
		}
		eventually(t, 20*time.Second, func() string {
			if n := len(catalogInstances(t, a, registration.ServiceName("effect"), id)); n != 0 {
				return strconv.Itoa(n) + " instances still in the catalog"
			}
			return ""
		})
		// Again: nothing is there, which is what the intent wants.
		exec(t, eff, ins[registration.IntentConsulDereg], intent.Applied)
	})

	t.Run("stale deregister leaves the newer generation", func(t *testing.T) {
		node := uuid.New()
		id := registration.ServiceID("effect", node)
		old, cur := intents(node, "effect", 4), intents(node, "effect", 5)
		exec(t, eff, old[registration.IntentConsulReg], intent.Applied)
		exec(t, eff, cur[registration.IntentConsulReg], intent.Applied)
		res := exec(t, eff, old[registration.IntentConsulDereg], intent.Skipped)
		if !strings.Contains(res.Reason, "generation 5") || !strings.Contains(res.Reason, id) {
			t.Errorf("reason %q does not name the service and the registered generation", res.Reason)
		}
		s := agentService(t, a, id)
		if s == nil || s.Meta["generation"] != "5" {
			t.Fatalf("after a stale deregister: service %+v, want generation 5 registered", s)
		}
		// A stale register does not replace it either, and a stale
		// pass_ttl passes nothing.
		exec(t, eff, old[registration.IntentConsulReg], intent.Skipped)
		exec(t, eff, old[registration.IntentConsulPassTTL], intent.Skipped)
		if s := agentService(t, a, id); s == nil || s.Meta["generation"] != "5" {
			t.Fatalf("after a stale register: service %+v, want generation 5 registered", s)
		}
		exec(t, eff, cur[registration.IntentConsulDereg], intent.Applied)
		if s := agentService(t, a, id); s != nil {
			t.Fatalf("current deregister left %+v", s)
		}
	})

	t.Run("pass_ttl of an unregistered node registers it from the pass", func(t *testing.T) {
		node := uuid.New()
		pass := intents(node, "effect", 1)[registration.IntentConsulPassTTL]
		pass.Payload.(*registration.ConsulPassTTL).NodeVersion = "1.2.3"
		exec(t, eff, pass, intent.Applied)
		id := registration.ServiceID("effect", node)
		if s := agentService(t, a, id); s == nil || s.Meta["generation"] != "1" || s.Meta["node_version"] != "1.2.3" {
			t.Fatalf("healed service %+v", s)
		}
		if st, _ := checkStatus(t, a, consul.CheckID(id)); st != api.HealthPassing {
			t.Errorf("healed service's check is %q, want passing", st)
		}
	})

	t.Run("rejected registration is permanent and hides the token", func(t *testing.T) {
		in := intents(uuid.New(), "effect", 1)[registration.IntentConsulReg]
		in.Payload.(*registration.ConsulRegister).NodeVersion = strings.Repeat("9", 600) // meta values end at 512
		_, err := eff.Execute(context.Background(), in)
		if !intent.IsPermanent(err) || intent.IsRetryable(err) {
			t.Fatalf("want a permanent error, got %v", err)
		}
		if strings.Contains(err.Error(), secretToken) || !strings.Contains(err.Error(), in.Target) {
			t.Errorf("error shows the token or hides the service id: %v", err)
		}
	})
}

func TestPassTTLKeepsCheckPassing(t *testing.T) {
	t.Parallel()
	a := consultest.Start(t)
	const ttl = 2 * time.Second
	eff := newTestEffect(t, consul.Config{Address: a.Addr, CheckTTL: ttl})
	node := uuid.New()
	ins := intents(node, "ttl", 1)
	checkID := consul.CheckID(registration.ServiceID("ttl", node))

	// Heartbeats for three TTLs or more: the check stays passing. It is
	// checked just before each pass, when the TTL has run longest. The
	// agent restarted the TTL no earlier than the last pass began, so only
	// samples taken well within the TTL of that count, and the loop runs
	// until it has enough of them: a stalled test process cannot fail the
	// test.
	begin := time.Now()
	lastPass := begin
	exec(t, eff, ins[registration.IntentConsulReg], intent.Applied)
	sampled := 0
	for sampled < 8 || time.Since(begin) < 3*ttl {
		if time.Since(begin) > time.Minute {
			t.Fatalf("only %d samples within the TTL in a minute: the machine is too slow for this test", sampled)
		}
		time.Sleep(ttl / 5)
		st, _ := checkStatus(t, a, checkID)
		if time.Since(lastPass) < ttl/2 {
			sampled++
			if st != api.HealthPassing {
				t.Fatalf("check %s is %q %v after the last pass began, within its TTL %v", checkID, st, time.Since(lastPass), ttl)
			}
		}
		pass := ins[registration.IntentConsulPassTTL]
		pass.Payload.(*registration.ConsulPassTTL).At = time.Now()
		lastPass = time.Now()
		exec(t, eff, pass, intent.Applied)
	}
	if _, out := checkStatus(t, a, checkID); !strings.Contains(out, "heartbeat at") {
		t.Errorf("check output %q does not record the heartbeat", out)
	}
	// The heartbeats stop: the TTL is real, and the check goes critical.
	eventually(t, ttl+20*time.Second, func() string {
		if st, _ := checkStatus(t, a, checkID); st != api.HealthCritical {
			return "check " + checkID + " is " + st + " after the heartbeats stopped"
		}
		return ""
	})
	if took := time.Since(lastPass); took < ttl {
		t.Errorf("check went critical %v after the last pass began, before its TTL %v", took, ttl)
	}
}

func TestAgentOutageIsRetryable(t *testing.T) {
	t.Parallel()
	a := consultest.Start(t)
	eff := newTestEffect(t, consul.Config{Address: a.Addr, Token: secretToken})
	node := uuid.New()
	id := registration.ServiceID("outage", node)
	exec(t, eff, intents(node, "outage", 1)[registration.IntentConsulReg], intent.Applied)

	a.Stop()
	next := intents(node, "outage", 2)
	for _, typ := range []string{registration.IntentConsulReg, registration.IntentConsulPassTTL, registration.IntentConsulDereg} {
		_, err := eff.Execute(context.Background(), next[typ])
		if err == nil {
			t.Fatalf("%s with the agent stopped: no error", typ)
		}
		if !intent.IsRetryable(err) || intent.IsPermanent(err) {
			t.Errorf("%s with the agent stopped: not retryable: %v", typ, err)
		}
		if !strings.Contains(err.Error(), id) || strings.Contains(err.Error(), secretToken) {
			t.Errorf("%s: error hides the service id or shows the token: %v", typ, err)
		}
	}

	a.Restart()
	exec(t, eff, next[registration.IntentConsulReg], intent.Applied)
	if s := agentService(t, a, id); s == nil || s.Meta["generation"] != "2" {
		t.Fatalf("after the retry: service %+v, want generation 2", s)
	}
	exec(t, eff, next[registration.IntentConsulPassTTL], intent.Applied)
	exec(t, eff, next[registration.IntentConsulDereg], intent.Applied)
}
