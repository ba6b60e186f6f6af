// Package consultest runs a real Consul agent for tests.
//
// [Start] starts "consul agent -dev" on free loopback ports, waits until it
// has elected itself leader, and stops it when the test ends, so no agent
// process outlives the test. [Agent.Stop] and [Agent.Restart] simulate an
// outage of the agent, which comes back with the services registered with
// it before; [Agent.RestartEmpty] one that comes back without them. [WithACL] starts it with ACLs enabled and a default
// policy of deny, as production agents run, and a management token
// ([Agent.ManagementToken]) for the test to create tokens and policies
// with. The consul binary comes from internal/testenv (REGISTRAR_CONSUL_BIN,
// which make test sets from scripts/consul.sh): without it the test is
// skipped, or fails under CI=true.
//
//	func TestRegister(t *testing.T) {
//		agent := consultest.Start(t)
//		eff, err := consul.New(consul.Config{Address: agent.Addr})
//		...
//		svc, _, err := agent.Client.Agent().Service(id, nil)
//	}
package consultest
