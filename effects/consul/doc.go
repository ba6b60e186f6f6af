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
//	eff, err := consul.New(consul.Config{Address: "127.0.0.1:8500", Token: token, Projections: store})
//	...
//	exec := intent.NewExecutor()
//	err = eff.Register(exec)
//	...
//	rec, err := consul.NewReconciler(consul.ReconcilerConfig{Effect: eff, Store: store})
//	...
//	rt, err := registrar.NewRegistration(nil, b, store, exec, registrar.RegistrationConfig{Reconciler: rec})
//
// store is the projection store the runtime writes (effects/postgres or
// effects/memory): the effect reads it to fence its writes, the reconciler
// to know what should be registered.
//
// # What is registered
//
// Named as the ONEX services name it: service "onex-{node_type}", id
// "onex-{node_type}-{node_id}" (registration.ServiceName, ServiceID), tags
// "onex" and "node-type:{node_type}", address and port from the node's
// "health" endpoint, else its "api" endpoint. Meta carries node_id,
// node_version, generation ([MetaGeneration]) and registered_by=registrar
// ([MetaRegisteredBy]), which marks the services registrar owns. The
// service has one TTL check ([CheckID]), passing at registration, with a
// TTL of
// [Config].CheckTTL (90 s, the reducer's liveness window) and
// DeregisterCriticalServiceAfter of [Config].DeregisterCriticalServiceAfter
// (5 min).
//
// # Generations, and the fence
//
// Each new registration of a node (a fresh introspection after an expiry, a
// timeout or a rejection) has a higher generation; a node whose type
// changes while active gets a new service id, and its decision deregisters
// the old one. Two registrar processes can hold one node's intents at once
// (its topics on different partitions, a failover), and a process can stall
// between reading the agent and writing to it, so a check followed by a
// write is no fence: a deregister of generation 1 that read the agent before
// generation 2 registered removes generation 2, and a metadata refresh that
// read before an expiry's deregister puts an expired node back.
//
// With [Config].Projections set (the projection store), the effect fences
// by converging instead: every register, deregister and heal reads the
// node's projection, then the agent's services of the node, writes what
// differs (the service of an active projection, with its generation,
// version and address; nothing for any other state), and reads both again,
// until a round finds nothing to change. The runtime relays a decision's
// Consul intents after its projection is committed, so the projection a
// round reads is at least as new as any intent. A writer whose write lost a
// race reads, after that write, the state that beat it and repairs what it
// wrote: whatever the interleaving, the last writer to finish leaves the
// agent as the projection says. A writer that does not finish leaves the
// nodes it was writing wrong until the [Reconciler]'s next pass: a process
// that dies between its write and its next read, or a heal whose next read
// fails (a TTL pass is not retried as such: its heartbeat is decided again,
// and decides nothing once the node expired). Run a Reconciler with the
// fenced effect. The tests hold one process between its read and its
// write to drive each race (TestFence*).
//
// All of this holds for one agent: every registrar process of a
// deployment, and its Reconciler, must use the same agent (Config.Address
// names one agent for the deployment, not each host's local one). A
// process converges and reconciles only what its own agent holds: with an
// agent per process, each process's Reconciler registers every active node
// with its own agent, and a deregister decided by one process leaves the
// copies the others' agents hold until Consul reaps them.
//
// The alternatives were tried against a real agent and rejected. Consul's
// transaction API has check-and-set service operations on the modify
// index, but on the catalog, and the catalog entries of an agent's node are
// the agent's: a delete-cas of a service registered through the agent
// succeeds and the agent's anti-entropy puts the service back, and a
// service set through the catalog has no agent TTL check for heartbeats to
// pass, and the agent removes it (TestCatalogTxnCannotFenceAgentServices).
// A generation in the service id would make a stale deregister harmless but
// breaks the ONEX service ids that operators and Python tooling look up,
// still needs a sweep of superseded ids, and does not fence a refresh
// against an expiry of the same generation, which converging does.
//
// Without Projections, the effect acts on the payloads alone: a register
// of an older generation than the registered one is Skipped, a deregister
// removes only the generation it names, each after reading the agent; a
// [Reconciler] repairs what races leave.
//
// # Healing and anti-entropy
//
// A TTL pass that finds its service missing (an agent that lost its state,
// a service Consul reaped while registrar lagged longer than CheckTTL plus
// DeregisterCriticalServiceAfter), registered with an older generation or
// with other metadata, registers it again: from the projection in the
// fenced mode, else from the pass's payload, which carries the projection's
// metadata. A node that heartbeats is back within a third of the TTL.
//
// The [Reconciler] is the anti-entropy for everything else (nodes that do
// not heartbeat soon, services that should be gone): each pass lists the
// agent's services registrar owns (tag "onex" and meta [MetaRegisteredBy]),
// pages through the active projections, and makes each node that differs
// converge. registrar.NewRegistration runs one beside the sweeper
// (RegistrationConfig.Reconciler and ReconcileInterval); [Reconciler.Run]
// runs one alone. Services registrar does not own are never touched; an
// owned service registrar could not have written (a node id in another
// spelling, an id that is not the ServiceID of its name) is left alone by
// the convergence of intents and removed by the reconciler's passes.
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
