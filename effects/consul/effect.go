package consul

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/hashicorp/consul/api"

	"github.com/registrar-go/registrar/intent"
	"github.com/registrar-go/registrar/reducer/registration"
)

// The service meta keys the effect writes.
const (
	// MetaNodeID holds the node's id.
	MetaNodeID = "node_id"
	// MetaNodeVersion holds the node's version.
	MetaNodeVersion = "node_version"
	// MetaGeneration holds the registration generation, in decimal: the
	// deregister and pass_ttl intents act only on the generation they name.
	MetaGeneration = "generation"
	// MetaRegisteredBy marks a service registrar registered, with the value
	// [RegisteredBy]: the services a [Reconciler] owns, and the only ones
	// it changes or removes.
	MetaRegisteredBy = "registered_by"
)

// RegisteredBy is the value of [MetaRegisteredBy] on every service the
// effect registers.
const RegisteredBy = "registrar"

// ErrClosed is returned (wrapped) by [Effect.Execute] after [Effect.Close].
// It is neither retryable nor permanent, so a runtime retries the intent:
// close the effect only after the runtime stopped.
var ErrClosed = errors.New("registrar/consul: effect closed")

// Agent is the part of the Consul agent HTTP API the effect calls.
// *api.Agent (client.Agent() of an *api.Client) implements it; the
// effect passes a context through the options of every call.
//
// Failed requests return an api.StatusError carrying the HTTP status; an
// unknown service or check is a StatusError with code 404. Any other error is
// taken for a transport error.
type Agent interface {
	// Service returns the service registered with the agent under serviceID.
	Service(serviceID string, q *api.QueryOptions) (*api.AgentService, *api.QueryMeta, error)
	// ServiceRegisterOpts registers service with the agent, replacing any
	// service of the same id.
	ServiceRegisterOpts(service *api.AgentServiceRegistration, opts api.ServiceRegisterOpts) error
	// ServiceDeregisterOpts removes the service serviceID and its checks.
	ServiceDeregisterOpts(serviceID string, q *api.QueryOptions) error
	// UpdateTTLOpts sets the status ("pass", "warn", "fail") and output of
	// the TTL check checkID, restarting its TTL.
	UpdateTTLOpts(checkID, output, status string, q *api.QueryOptions) error
	// ServicesWithFilterOpts returns the agent's services that the filter
	// expression selects, by id.
	ServicesWithFilterOpts(filter string, q *api.QueryOptions) (map[string]*api.AgentService, error)
}

var _ Agent = (*api.Agent)(nil)

// Effect executes the registration workflow's consul.register,
// consul.deregister and consul.pass_ttl intents against a Consul agent. It is
// safe for concurrent use and starts no goroutines.
type Effect struct {
	agent     Agent
	proj      Projections // nil: act on the payloads alone
	cfg       Config
	log       *slog.Logger
	closeIdle func() // nil when the caller owns the client
	closed    atomic.Bool
}

var _ intent.IntentEffect = (*Effect)(nil)

// New returns an effect configured by cfg. Unless cfg.Agent is set, it builds
// a client from cfg's connection fields (no request is made yet); a TLS file
// that cannot be read is an error here.
//
// Since New sends no request, it has no connection failure to report: its
// errors (an invalid cfg, an unreadable TLS file) are configuration errors
// and are not marked retryable, as postgres.NewPool's configuration errors
// are not. An agent that cannot be reached shows in the effect's requests,
// whose errors are marked [intent.Retryable].
func New(cfg Config) (*Effect, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	e := &Effect{agent: cfg.Agent, proj: cfg.Projections, cfg: cfg, log: log}
	if e.agent == nil {
		ac := cfg.apiConfig()
		if cfg.EditAPIConfig != nil {
			cfg.EditAPIConfig(ac)
		}
		client, err := api.NewClient(ac)
		if err != nil {
			return nil, fmt.Errorf("registrar/consul: new client: %w", redact(err, cfg.Token))
		}
		// NewClient completed ac with the HTTP client it uses.
		if hc := ac.HttpClient; hc != nil {
			e.closeIdle = hc.CloseIdleConnections
		}
		e.agent = client.Agent()
	}
	e.cfg.Agent, e.cfg.EditAPIConfig, e.cfg.Projections = nil, nil, nil
	return e, nil
}

// Register registers e with exec for the intent types
// [registration.IntentConsulReg], [registration.IntentConsulDereg] and
// [registration.IntentConsulPassTTL] (the last as [intent.Volatile]: a TTL
// pass is soft state that the next heartbeat refreshes).
func (e *Effect) Register(exec *intent.Executor) error {
	for _, t := range []string{registration.IntentConsulReg, registration.IntentConsulDereg} {
		if err := exec.Register(t, e); err != nil {
			return err
		}
	}
	// A TTL pass refreshes soft state the next heartbeat refreshes again.
	if err := exec.Register(registration.IntentConsulPassTTL, e, intent.Volatile()); err != nil {
		return err
	}
	return nil
}

// Close releases the idle connections of the client New built (a
// caller-built Agent is left alone). Execute then fails with [ErrClosed].
// Close is idempotent and always returns nil.
func (e *Effect) Close() error {
	if e.closed.Swap(true) {
		return nil
	}
	if e.closeIdle != nil {
		e.closeIdle()
	}
	return nil
}

// CheckID returns the id of the TTL check the effect registers with the
// service serviceID: "service:{service id}", Consul's own name for a
// service's single check.
func CheckID(serviceID string) string { return "service:" + serviceID }

// Execute performs a consul.register, consul.deregister or consul.pass_ttl
// intent, chosen by its payload type (*registration.ConsulRegister,
// *registration.ConsulDeregister, *registration.ConsulPassTTL):
//
// With [Config].Projections set (the fenced mode), register and deregister
// both make the node's services converge to its projection, which is
// committed before the runtime relays them: the service of an active
// projection (its generation, type, version and address), nothing
// otherwise; the projection is read again after every write, so a write
// that lost a race is repaired by its own writer.
//
//   - register: Applied if the projection still holds the intent's
//     registration; Skipped (with what it holds, which was registered
//     instead) otherwise.
//   - deregister: Applied if the service is gone; Skipped if the
//     projection holds it again.
//   - pass_ttl: marks the service's check passing if the service is
//     registered with the intent's generation and metadata; Skipped if a
//     newer generation is registered. A service that is missing, of an
//     older generation or with other metadata is healed: converged to the
//     projection (Skipped if that no longer holds the pass's generation,
//     or if the agent refuses the registration as malformed: that is the
//     register intent's error, and must not fail the heartbeat).
//
// Without Projections, register registers the payload's service unless a
// newer generation is registered (Skipped), deregister removes it if it is
// registered with the intent's generation (Skipped for another, Applied
// for none), and pass_ttl heals from its own payload. Each is then a read
// followed by a write, which two processes can interleave; a [Reconciler]
// repairs what they leave.
//
// Errors name the service id, never the token. Faults of the environment
// (transport errors, timeouts, 5xx, 429, and ACL refusals 401 and 403) are
// [intent.Retryable]; only a request the agent rejects as malformed (400,
// 413, 414, 422) and a payload of another type are [intent.Permanent] (the
// package documentation has the table).
func (e *Effect) Execute(ctx context.Context, in intent.Intent) (intent.Result, error) {
	if e.closed.Load() {
		return intent.Result{}, fmt.Errorf("registrar/consul: %s %s: %w", in.Type, in.Target, ErrClosed)
	}
	start := time.Now()
	var (
		nodeType string
		nodeID   uuid.UUID
		gen      int64
		op       func(ctx context.Context, id string) (intent.Result, error)
	)
	switch p := in.Payload.(type) {
	case *registration.ConsulRegister:
		if p != nil {
			nodeType, nodeID, gen = p.NodeType, p.NodeID, p.Generation
			op = func(ctx context.Context, id string) (intent.Result, error) { return e.register(ctx, id, p) }
		}
	case *registration.ConsulDeregister:
		if p != nil {
			nodeType, nodeID, gen = p.NodeType, p.NodeID, p.Generation
			op = func(ctx context.Context, id string) (intent.Result, error) { return e.deregister(ctx, id, p) }
		}
	case *registration.ConsulPassTTL:
		if p != nil {
			nodeType, nodeID, gen = p.NodeType, p.NodeID, p.Generation
			op = func(ctx context.Context, id string) (intent.Result, error) { return e.passTTL(ctx, id, p) }
		}
	default:
		err := intent.Permanent(fmt.Errorf(
			"registrar/consul: intent %q: payload type %T is not a *registration.ConsulRegister, *registration.ConsulDeregister or *registration.ConsulPassTTL",
			in.Type, in.Payload))
		e.logResult(ctx, in, "", 0, intent.Result{}, err, time.Since(start))
		return intent.Result{}, err
	}
	var (
		id  string
		res intent.Result
		err error
	)
	switch {
	case op == nil:
		err = intent.Permanent(fmt.Errorf("registrar/consul: intent %q: nil %T payload", in.Type, in.Payload))
	case nodeType == "":
		err = intent.Permanent(fmt.Errorf("registrar/consul: intent %q for node %s: empty node type", in.Type, nodeID))
	default:
		id = registration.ServiceID(nodeType, nodeID)
		res, err = op(ctx, id)
	}
	e.logResult(ctx, in, id, gen, res, err, time.Since(start))
	return res, err
}

func (e *Effect) register(ctx context.Context, id string, p *registration.ConsulRegister) (intent.Result, error) {
	if e.proj != nil {
		c, err := e.converge(ctx, e.proj, p.NodeID, nil, "")
		if err != nil {
			return intent.Result{}, err
		}
		if !c.holds(id, p.Generation) {
			return intent.Result{Status: intent.Skipped, Reason: fmt.Sprintf(
				"service %s generation %d is not what the projection holds now (%s); registered that instead", id, p.Generation, describe(c))}, nil
		}
		return intent.Result{}, nil
	}
	cur, err := e.service(ctx, id)
	if err != nil {
		return intent.Result{}, e.fail("register", id, err)
	}
	if g, ok := generation(cur); ok && g > p.Generation {
		return intent.Result{Status: intent.Skipped, Reason: fmt.Sprintf(
			"service %s is registered with the newer generation %d, not replaced by generation %d", id, g, p.Generation)}, nil
	}
	if err := e.put(ctx, e.registration(p)); err != nil {
		return intent.Result{}, e.fail("register", id, err)
	}
	return intent.Result{}, nil
}

func (e *Effect) deregister(ctx context.Context, id string, p *registration.ConsulDeregister) (intent.Result, error) {
	if e.proj != nil {
		c, err := e.converge(ctx, e.proj, p.NodeID, nil, "")
		if err != nil {
			return intent.Result{}, err
		}
		if c.want != nil && c.want.ID == id {
			return intent.Result{Status: intent.Skipped, Reason: fmt.Sprintf(
				"service %s stays: the projection holds it now (%s)", id, describe(c))}, nil
		}
		return intent.Result{}, nil
	}
	cur, err := e.service(ctx, id)
	switch {
	case err != nil:
		return intent.Result{}, e.fail("deregister", id, err)
	case cur == nil:
		return intent.Result{}, nil
	}
	if g, ok := generation(cur); !ok || g != p.Generation {
		return intent.Result{Status: intent.Skipped, Reason: fmt.Sprintf(
			"service %s is registered with generation %s, not %d", id, describeGeneration(cur), p.Generation)}, nil
	}
	if _, err := e.remove(ctx, id); err != nil {
		return intent.Result{}, e.fail("deregister", id, err)
	}
	return intent.Result{}, nil
}

func (e *Effect) passTTL(ctx context.Context, id string, p *registration.ConsulPassTTL) (intent.Result, error) {
	cur, err := e.service(ctx, id)
	if err != nil {
		return intent.Result{}, e.fail("pass TTL of", id, err)
	}
	g, ok := generation(cur)
	switch {
	case cur != nil && ok && g > p.Generation:
		return intent.Result{Status: intent.Skipped, Reason: fmt.Sprintf(
			"service %s is registered with the newer generation %d, not %d", id, g, p.Generation)}, nil
	case cur == nil || !ok || g < p.Generation || (carriesMeta(p) && !matches(cur, e.registration(p.Register()))):
		return e.heal(ctx, id, p, cur)
	}
	output := "heartbeat at " + p.At.UTC().Format(time.RFC3339Nano) + ", generation " + strconv.FormatInt(p.Generation, 10)
	ctx2, cancel := context.WithTimeout(ctx, e.cfg.Timeout)
	defer cancel()
	if err := e.agent.UpdateTTLOpts(CheckID(id), output, "pass", (&api.QueryOptions{}).WithContext(ctx2)); err != nil {
		if notFound(err) {
			// Removed between the read and the pass.
			return e.heal(ctx, id, p, nil)
		}
		return intent.Result{}, e.fail("pass TTL of", id, err)
	}
	return intent.Result{}, nil
}

// carriesMeta reports whether a pass names the metadata to compare the
// service with; a pass built without them is compared by generation only.
func carriesMeta(p *registration.ConsulPassTTL) bool {
	return p.NodeVersion != "" || p.Endpoints != nil
}

// heal registers the service a TTL pass found missing (cur nil), of an
// older generation, or with other metadata: from the projection, made to
// converge, if the effect has one, else from the pass itself. The
// registration's check starts passing, which is what the pass wanted.
//
// A registration the agent refuses for good (a 400: a health endpoint on
// 0.0.0.0, a meta value too long) is no fault of the pass: the register
// intent that wanted it carried that error. The pass is Skipped then; an
// error would fail the heartbeat's decision, dead-letter the heartbeat and
// let the node's liveness expire while it heartbeats.
func (e *Effect) heal(ctx context.Context, id string, p *registration.ConsulPassTTL, cur *api.AgentService) (intent.Result, error) {
	res, err := e.healOnce(ctx, id, p, cur)
	if err != nil && intent.IsPermanent(err) {
		e.log.LogAttrs(ctx, slog.LevelWarn, "consul service not healed: the agent refuses its registration",
			slog.String("service_id", id), slog.Int64("generation", p.Generation), slog.String("error", err.Error()))
		return intent.Result{Status: intent.Skipped, Reason: "service " + id + " not healed: " + err.Error()}, nil
	}
	return res, err
}

func (e *Effect) healOnce(ctx context.Context, id string, p *registration.ConsulPassTTL, cur *api.AgentService) (intent.Result, error) {
	what := "missing"
	if cur != nil {
		what = "registered with generation " + describeGeneration(cur) + " or other metadata"
	}
	if e.proj != nil {
		c, err := e.converge(ctx, e.proj, p.NodeID, nil, id)
		if err != nil {
			return intent.Result{}, err
		}
		if !c.holds(id, p.Generation) {
			return intent.Result{Status: intent.Skipped, Reason: fmt.Sprintf(
				"service %s was %s, and the projection no longer holds generation %d (%s)", id, what, p.Generation, describe(c))}, nil
		}
		e.log.LogAttrs(ctx, slog.LevelInfo, "consul service healed from the projection",
			slog.String("service_id", id), slog.String("found", what), slog.Int64("generation", p.Generation),
			slog.Int("registered", c.registered), slog.Int("updated", c.updated), slog.Int("deregistered", c.deregistered))
		return intent.Result{}, nil
	}
	if err := e.put(ctx, e.registration(p.Register())); err != nil {
		return intent.Result{}, e.fail("heal", id, err)
	}
	e.log.LogAttrs(ctx, slog.LevelInfo, "consul service healed from the TTL pass",
		slog.String("service_id", id), slog.String("found", what), slog.Int64("generation", p.Generation))
	return intent.Result{}, nil
}

// holds reports whether the projection a convergence ended on wants the
// service id registered with generation gen.
func (c converged) holds(id string, gen int64) bool {
	return c.want != nil && c.want.ID == id && c.want.Meta[MetaGeneration] == strconv.FormatInt(gen, 10)
}

// describe says what a convergence left registered.
func describe(c converged) string {
	state := "no projection"
	if c.proj != nil {
		state = "node " + c.proj.State.String() + ", generation " + strconv.FormatInt(c.proj.Generation, 10)
	}
	if c.want == nil {
		return state + ": no service"
	}
	return state + ": service " + c.want.ID
}

// service returns the service registered under id, or nil if there is none.
func (e *Effect) service(ctx context.Context, id string) (*api.AgentService, error) {
	ctx, cancel := context.WithTimeout(ctx, e.cfg.Timeout)
	defer cancel()
	svc, _, err := e.agent.Service(id, (&api.QueryOptions{}).WithContext(ctx))
	switch {
	case notFound(err):
		return nil, nil
	case err != nil:
		return nil, err
	}
	return svc, nil
}

// generation returns the registration generation in svc's meta.
func generation(svc *api.AgentService) (int64, bool) {
	if svc == nil {
		return 0, false
	}
	s, ok := svc.Meta[MetaGeneration]
	if !ok {
		return 0, false
	}
	g, err := strconv.ParseInt(s, 10, 64)
	return g, err == nil
}

func describeGeneration(svc *api.AgentService) string {
	if g, ok := generation(svc); ok {
		return strconv.FormatInt(g, 10)
	}
	if s, ok := svc.Meta[MetaGeneration]; ok {
		return strconv.Quote(s)
	}
	return "(none)"
}

func (e *Effect) logResult(ctx context.Context, in intent.Intent, id string, gen int64, res intent.Result, err error, took time.Duration) {
	level := slog.LevelDebug
	if err == nil && res.Status != intent.Applied {
		level = slog.LevelInfo
	}
	if !e.log.Enabled(ctx, level) {
		return
	}
	attrs := []slog.Attr{
		slog.String("intent", in.Type), slog.String("service_id", id), slog.Int64("generation", gen),
		slog.String("correlation_id", in.CorrelationID.String()), slog.Duration("took", took),
	}
	if err != nil {
		attrs = append(attrs, slog.String("error", err.Error()), slog.Bool("retryable", intent.IsRetryable(err)))
		e.log.LogAttrs(ctx, level, "consul intent failed", attrs...)
		return
	}
	attrs = append(attrs, slog.String("status", res.Status.String()))
	if res.Reason != "" {
		attrs = append(attrs, slog.String("reason", res.Reason))
	}
	e.log.LogAttrs(ctx, level, "consul intent executed", attrs...)
}
