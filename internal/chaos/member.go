package chaos

import (
	"log/slog"
	"time"

	"github.com/registrar-go/registrar"
	"github.com/registrar-go/registrar/bus"
	"github.com/registrar-go/registrar/contract"
	"github.com/registrar-go/registrar/intent"
	"github.com/registrar-go/registrar/reducer/registration"
)

// MemberConfig is what one member of the group is built from.
type MemberConfig struct {
	// Contract names the topics and the group; every member shares it.
	Contract *contract.Contract
	// Bus is the member's bus, wrapped in the run's publish faults.
	Bus bus.EventBus
	// Store and Exec are the topology's, shared by every member.
	Store registration.Store
	Exec  *intent.Executor
	// Batch selects micro-batches (the default batch size); false hands
	// the Runtime one message at a time (registrar.WithBatch(1, 0)).
	Batch bool
	// Clock is the fixed time the member's clock shows ([Clock]).
	Clock time.Time
	// Logger receives the Runtime's log; nil is silent.
	Logger *slog.Logger
}

// newMember builds one registration Runtime of the group. It is the only
// place the harness constructs a Runtime.
//
// The member runs no sweeper: the generator publishes the timeout checks,
// in order with the entity's other inputs. Its backoff is short, and its
// relay task looks for records a stopped member left behind every 100 ms
// (older than 500 ms), so that a run under faults stays short.
func newMember(c MemberConfig) (*registrar.RegistrationRuntime, error) {
	opts := []registrar.Option{
		registrar.WithRelay(100*time.Millisecond, 500*time.Millisecond),
		registrar.WithClock(func() time.Time { return c.Clock }),
		registrar.WithRetryBackoff(5*time.Millisecond, 200*time.Millisecond),
		registrar.WithLogger(c.Logger),
	}
	if !c.Batch {
		opts = append(opts, registrar.WithBatch(1, 0))
	}
	return registrar.NewRegistration(c.Contract, c.Bus, c.Store, c.Exec, registrar.RegistrationConfig{NoSweeper: true}, opts...)
}

// modelReducer returns the reducer the serial model runs: the one
// NewRegistration derives from the contract.
func modelReducer(c *contract.Contract) (*registration.Reducer, error) {
	return registration.New(registrar.ReducerConfig(c))
}
