// Package consul registers the registration workflow's nodes as services with
// a Consul agent: it is the [Effect] for the consul.register,
// consul.deregister and consul.pass_ttl intents of package
// reducer/registration, on the hashicorp/consul/api client.
//
// # Where it sits in the flow
//
// The registration reducer emits consul.register when a node becomes active
// (and again on a metadata refresh), consul.pass_ttl on its heartbeats, and
// consul.deregister when its liveness expires. The runtime executes them
// through an intent.Executor, in order with the decision's other intents;
// [Effect.Register] routes the three types to one [Effect]:
//
//	eff, err := consul.New(consul.Config{Address: "127.0.0.1:8500", Token: token})
//	...
//	exec := intent.NewExecutor()
//	err = eff.Register(exec)
//
// # What is registered
//
// Named as the ONEX services name it: service "onex-{node_type}", id
// "onex-{node_type}-{node_id}" (registration.ServiceName, ServiceID), tags
// "onex" and "node-type:{node_type}", address and port from the node's
// "health" endpoint, else its "api" endpoint. Meta carries node_id,
// node_version and generation ([MetaGeneration]). The service has one TTL
// check ([CheckID]), passing at registration, with a TTL of
// [Config].CheckTTL (90 s, the reducer's liveness window) and
// DeregisterCriticalServiceAfter of [Config].DeregisterCriticalServiceAfter
// (5 min).
//
// # Generations
//
// Each new registration of a node (a fresh introspection after an expiry, a
// timeout or a rejection) has a higher generation. The effects act only on
// the generation they name, which the effect reads back from the agent first:
// a deregister of an older generation leaves the newer registration in place
// ([intent.Skipped]), a register of an older generation does not replace a
// newer one (Skipped), and a pass_ttl of another generation passes nothing
// (Skipped). Re-registering the same generation is idempotent; deregistering
// a service that is not there is Applied. The read and the write are two
// requests: the runtime serializes the intents of one node, so nothing of
// registrar's own comes between them.
//
// # How heartbeats keep the check passing
//
// The check is a TTL check that the node's heartbeats keep passing: the
// reducer emits a consul.pass_ttl intent when a heartbeat enters a new third
// of the TTL (registration.Config.ConsulTTL, which should equal CheckTTL), so
// at most three per TTL however often a node heartbeats, and at least one per
// third while it heartbeats at least that often. The Consul check therefore
// tracks the node's own heartbeats, not the liveness of some process beside
// it: a node that stops heartbeating goes critical in Consul within one TTL,
// while registrar's liveness timeout deregisters it. And if registrar itself
// vanishes, nothing passes the checks any more: they go critical after the
// TTL, and Consul removes the services by itself after
// DeregisterCriticalServiceAfter, so no registration outlives its
// orchestrator for long.
//
// # Errors
//
// Errors name the service id, never the ACL token (not even when the
// agent's response would echo it). Each is marked for the runtime by one
// rule: an intent is [intent.Permanent] only when it is at fault itself,
// when the same intent fails the same way again whatever happens to the
// agent and its ACLs; every fault of the environment is [intent.Retryable],
// so the runtime retries without committing and the input is never
// dead-lettered for it:
//
//	failure                                            marked     why
//	connection refused or reset, DNS, TLS handshake    Retryable  agent down or unreachable
//	timeout (Config.Timeout, ctx deadline), canceled   Retryable  slow agent, or shutting down
//	5xx                                                Retryable  agent or servers failing, no leader
//	408 Request Timeout, 429 Too Many Requests         Retryable  overloaded, rate limited
//	401, 403 Permission denied / ACL not found, 407    Retryable  token not created or replicated
//	                                                              yet, policy missing, expired:
//	                                                              an operator fixes it
//	404 and other 4xx                                  Retryable  a proxy or an agent version
//	                                                              that does not serve the path
//	400 Bad Request, 413, 414, 422                     Permanent  the request built from the
//	                                                              payload is malformed
//	payload of another type, nil, empty node type      Permanent  no agent can accept it
//
// A 404 where it means "not registered" (reading a service, removing one,
// passing its check) is no error: see Execute.
//
// # Clients
//
// [New] builds a client from [Config]'s connection fields, or uses an
// [Agent] the caller built (client.Agent() of an *api.Client); the caller
// owns that client. [Config].EditAPIConfig reaches the settings Config does
// not name. Package consultest starts a real agent for tests.
package consul
