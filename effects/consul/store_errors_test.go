package consul_test

import (
	"context"
	"errors"
	"testing"

	"github.com/google/uuid"

	"github.com/registrar-go/registrar/effects/consul"
	"github.com/registrar-go/registrar/intent"
	"github.com/registrar-go/registrar/reducer/registration"
)

// failingProjections fails every Load with err.
type failingProjections struct{ err error }

func (f failingProjections) Load(context.Context, uuid.UUID) (*registration.Projection, error) {
	return nil, f.err
}

// TestProjectionReadFailuresAreRetryable: a fenced intent whose projection
// read fails is retried, whatever the store marked its error: reading the
// projection is the environment's business, never the intent's fault (a
// Postgres data exception on a read is marked permanent by the store's own
// classification, which is about writes). A permanent error would
// dead-letter a register or deregister and leave Consul wrong.
func TestProjectionReadFailuresAreRetryable(t *testing.T) {
	for name, storeErr := range map[string]error{
		"unmarked":  errors.New("connection reset"),
		"retryable": intent.Retryable(errors.New("too many connections")),
		"permanent": intent.Permanent(errors.New("invalid input syntax")),
	} {
		eff := newTestEffect(t, consul.Config{Address: closedAddr(t), Projections: failingProjections{storeErr}})
		for typ, in := range intents(uuid.New(), "effect", 1) {
			_, err := eff.Execute(context.Background(), in)
			if err == nil || !intent.IsRetryable(err) || intent.IsPermanent(err) {
				t.Errorf("%s store error, %s: %v; want retryable", name, typ, err)
			}
		}
	}
}
