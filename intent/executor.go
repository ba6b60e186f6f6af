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
	mu      sync.Mutex // serializes Register
	effects atomic.Pointer[map[string]IntentEffect]
}

// NewExecutor returns an Executor with no effects.
func NewExecutor() *Executor {
	e := &Executor{}
	m := map[string]IntentEffect{}
	e.effects.Store(&m)
	return e
}

// Register routes intents of type typ to eff. Registering an empty type, a nil
// effect, or a type that already has an effect is an error.
func (e *Executor) Register(typ string, eff IntentEffect) error {
	if typ == "" {
		return errors.New("registrar/intent: register: empty intent type")
	}
	if eff == nil {
		return fmt.Errorf("registrar/intent: register %q: nil effect", typ)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	cur := *e.effects.Load()
	if _, dup := cur[typ]; dup {
		return fmt.Errorf("registrar/intent: register %q: an effect is already registered for it", typ)
	}
	next := maps.Clone(cur)
	next[typ] = eff
	e.effects.Store(&next)
	return nil
}

// Effect returns the effect registered for typ.
func (e *Executor) Effect(typ string) (IntentEffect, bool) {
	eff, ok := (*e.effects.Load())[typ]
	return eff, ok
}

// Types returns the registered intent types, sorted.
func (e *Executor) Types() []string {
	return slices.Sorted(maps.Keys(*e.effects.Load()))
}

// CheckRoutes returns an error naming every type in routed that has no
// effect, or nil if all have one. Call it at start-up with the contract's
// routing table so that a wiring mistake stops the service before its first
// message.
func (e *Executor) CheckRoutes(routed []string) error {
	m := *e.effects.Load()
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
	eff, ok := (*e.effects.Load())[in.Type]
	if !ok {
		return Result{}, noEffect(in.Type)
	}
	return eff.Execute(ctx, in)
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
