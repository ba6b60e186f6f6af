package intent

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
)

// Executor routes intents to the effects registered for their types.
//
// Register effects while wiring the service, then execute. All methods are
// safe for concurrent use; executing never takes a lock.
type Executor struct {
	mu     sync.Mutex // serializes Register
	routes atomic.Pointer[map[string]route]
}

// route is what Register recorded for one intent type.
type route struct {
	effect   IntentEffect
	volatile bool
}

// RegisterOption configures how [Executor.Register] routes an intent type.
type RegisterOption interface {
	applyRegister(*route)
}

type registerFunc func(*route)

func (f registerFunc) applyRegister(r *route) { f(r) }

// Volatile declares that intents of the type refresh soft state that a later
// intent of the same type repeats anyway, such as a Consul TTL pass. The
// runtime runs the volatile intents of a decision that has no events and no
// other intent outside the store before its store write, without a durable
// outbox record; a failure retries the whole decision. Without Volatile
// (the default), an intent on a system other than the store is recorded in
// the outbox with the store write and executed from that record.
func Volatile() RegisterOption {
	return registerFunc(func(r *route) { r.volatile = true })
}

// NewExecutor returns an Executor with no effects.
func NewExecutor() *Executor {
	e := &Executor{}
	m := map[string]route{}
	e.routes.Store(&m)
	return e
}

// Register routes intents of type typ to eff, as opts say. Registering an
// empty type, a nil effect, or a type that already has an effect is an error.
func (e *Executor) Register(typ string, eff IntentEffect, opts ...RegisterOption) error {
	if typ == "" {
		return errors.New("registrar/intent: register: empty intent type")
	}
	if eff == nil {
		return fmt.Errorf("registrar/intent: register %q: nil effect", typ)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	cur := *e.routes.Load()
	if _, dup := cur[typ]; dup {
		return fmt.Errorf("registrar/intent: register %q: an effect is already registered for it", typ)
	}
	r := route{effect: eff}
	for _, o := range opts {
		o.applyRegister(&r)
	}
	next := maps.Clone(cur)
	next[typ] = r
	e.routes.Store(&next)
	return nil
}

// Effect returns the effect registered for typ.
func (e *Executor) Effect(typ string) (IntentEffect, bool) {
	r, ok := (*e.routes.Load())[typ]
	return r.effect, ok
}

// IsVolatile reports whether typ was registered with [Volatile].
func (e *Executor) IsVolatile(typ string) bool {
	return (*e.routes.Load())[typ].volatile
}

// Types returns the registered intent types, sorted.
func (e *Executor) Types() []string {
	return slices.Sorted(maps.Keys(*e.routes.Load()))
}

// CheckRoutes returns an error naming every type in routed that has no
// effect, or nil if all have one. Call it at start-up with the contract's
// routing table so that a wiring mistake stops the service before its first
// message.
func (e *Executor) CheckRoutes(routed []string) error {
	m := *e.routes.Load()
	var errs []error
	for _, t := range routed {
		if _, ok := m[t]; !ok {
			errs = append(errs, noEffect(t))
		}
	}
	return errors.Join(errs...)
}

func noEffect(typ string) error {
	return fmt.Errorf("registrar/intent: %w for intent type %q", ErrNoEffect, typ)
}

// Execute executes one intent with the effect registered for its type. An
// unregistered type returns an error wrapping [ErrNoEffect] that names it.
func (e *Executor) Execute(ctx context.Context, in Intent) (Result, error) {
	r, ok := (*e.routes.Load())[in.Type]
	if !ok {
		return Result{}, noEffect(in.Type)
	}
	return r.effect.Execute(ctx, in)
}

// ExecuteAll executes ins in order and stops at the first failure, which it
// returns as an [*ExecError] saying which intent failed, or at the first
// result with status [Conflict], since the intents after it were decided on
// state that is gone. It returns the results of the intents executed so far,
// the conflicting one included.
func (e *Executor) ExecuteAll(ctx context.Context, ins []Intent) ([]Result, error) {
	results := make([]Result, 0, len(ins))
	for i, in := range ins {
		if err := ctx.Err(); err != nil {
			return results, &ExecError{Index: i, Type: in.Type, Target: in.Target, Err: err}
		}
		r, err := e.Execute(ctx, in)
		if err != nil {
			return results, &ExecError{Index: i, Type: in.Type, Target: in.Target, Err: err}
		}
		results = append(results, r)
		if r.Status == Conflict {
			break
		}
	}
	return results, nil
}
