package consultest_test

import (
	"bytes"
	"errors"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
	"go.uber.org/goleak"

	"github.com/registrar-go/registrar/effects/consul/consultest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// processes returns the pids of the processes with an argument node.
func processes(t *testing.T, node string) []string {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc")
	}
	paths, err := filepath.Glob("/proc/[0-9]*/cmdline")
	if err != nil {
		t.Fatal(err)
	}
	var pids []string
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err == nil && bytes.Contains(b, []byte("\x00"+node+"\x00")) {
			pids = append(pids, filepath.Base(filepath.Dir(p)))
		}
	}
	return pids
}

func refused(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err == nil {
		_ = c.Close()
	}
	return err != nil
}

func TestStartStopRestart(t *testing.T) {
	var a *consultest.Agent
	t.Run("agent", func(t *testing.T) {
		a = consultest.Start(t)
		if got := processes(t, a.Node); len(got) != 1 {
			t.Fatalf("processes of %s: %v, want one", a.Node, got)
		}
		leader, err := a.Client.Status().Leader()
		if err != nil || leader == "" {
			t.Fatalf("leader: %q, %v", leader, err)
		}
		if self, err := a.Client.Agent().NodeName(); err != nil || self != a.Node {
			t.Fatalf("node name: %q, %v; want %q", self, err, a.Node)
		}

		a.Stop()
		if !refused(a.Addr) {
			t.Fatalf("%s accepts connections after Stop", a.Addr)
		}
		if got := processes(t, a.Node); len(got) != 0 {
			t.Fatalf("processes of %s after Stop: %v", a.Node, got)
		}
		a.Stop() // stopping a stopped agent does nothing

		a.Restart()
		if leader, err := a.Client.Status().Leader(); err != nil || leader == "" {
			t.Fatalf("leader after Restart: %q, %v", leader, err)
		}
		a.Restart() // restarting a running agent stops it first
		if got := processes(t, a.Node); len(got) != 1 {
			t.Fatalf("processes of %s after two restarts: %v, want one", a.Node, got)
		}
	})
	if a == nil {
		return // skipped
	}
	// The test's cleanup stopped the agent: nothing is left behind.
	if got := processes(t, a.Node); len(got) != 0 {
		t.Errorf("processes of %s after the test: %v", a.Node, got)
	}
	if !refused(a.Addr) {
		t.Errorf("%s accepts connections after the test", a.Addr)
	}
}

// TestRestartKeepsServices: Restart brings the agent back with the services
// and checks registered with it before (Consul restores them from its data
// directory, even in -dev mode); RestartEmpty brings it back without them.
func TestRestartKeepsServices(t *testing.T) {
	a := consultest.Start(t)
	svc := &api.AgentServiceRegistration{ID: "kept-1", Name: "kept", Port: 7001,
		Check: &api.AgentServiceCheck{CheckID: "service:kept-1", TTL: "90s", Status: api.HealthPassing}}
	if err := a.Client.Agent().ServiceRegister(svc); err != nil {
		t.Fatal(err)
	}
	has := func() (bool, bool) {
		t.Helper()
		svcs, err := a.Client.Agent().Services()
		if err != nil {
			t.Fatal(err)
		}
		checks, err := a.Client.Agent().Checks()
		if err != nil {
			t.Fatal(err)
		}
		return svcs[svc.ID] != nil, checks["service:kept-1"] != nil
	}
	a.Restart()
	if s, c := has(); !s || !c {
		t.Errorf("after Restart: service %v, check %v; want both restored", s, c)
	}
	a.RestartEmpty()
	if s, c := has(); s || c {
		t.Errorf("after RestartEmpty: service %v, check %v; want neither", s, c)
	}
	if leader, err := a.Client.Status().Leader(); err != nil || leader == "" {
		t.Fatalf("leader after RestartEmpty: %q, %v", leader, err)
	}
}

func TestAgentsAreIndependent(t *testing.T) {
	a, b := consultest.Start(t), consultest.Start(t)
	if a.Addr == b.Addr || a.Node == b.Node {
		t.Fatalf("two agents share an address or node name: %s %s, %s %s", a.Addr, a.Node, b.Addr, b.Node)
	}
	svc := &api.AgentServiceRegistration{ID: "independent-1", Name: "independent"}
	if err := a.Client.Agent().ServiceRegister(svc); err != nil {
		t.Fatal(err)
	}
	svcs, err := b.Client.Agent().Services()
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := svcs[svc.ID]; ok {
		t.Fatal("a service registered with one agent shows up in the other")
	}
}

func TestWithACL(t *testing.T) {
	a := consultest.Start(t, consultest.WithACL())
	if a.ManagementToken == "" {
		t.Fatal("no management token")
	}
	// The management client may do anything.
	svc := &api.AgentServiceRegistration{ID: "acl-1", Name: "acl"}
	if err := a.Client.Agent().ServiceRegister(svc); err != nil {
		t.Fatalf("register with the management token: %v", err)
	}
	self, _, err := a.Client.ACL().TokenReadSelf(nil)
	if err != nil || self.SecretID != a.ManagementToken {
		t.Fatalf("token self: %+v, %v", self, err)
	}
	// Without a token, and with an unknown one, nothing is allowed.
	for name, token := range map[string]string{"anonymous": "", "unknown": "00000000-0000-4000-8000-000000000000"} {
		c, err := api.NewClient(&api.Config{Address: a.Addr, Token: token})
		if err != nil {
			t.Fatal(err)
		}
		err = c.Agent().ServiceRegister(&api.AgentServiceRegistration{ID: "acl-2", Name: "acl"})
		var se api.StatusError
		if !errors.As(err, &se) || se.Code != 403 {
			t.Errorf("%s: register = %v, want a 403", name, err)
		}
	}
	// Without ACLs (the default), anonymous requests may do anything.
	b := consultest.Start(t)
	if b.ManagementToken != "" {
		t.Errorf("an agent without WithACL has a management token")
	}
	if err := b.Client.Agent().ServiceRegister(svc); err != nil {
		t.Fatalf("register without ACLs: %v", err)
	}
}
