package consul_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/registrar-go/registrar/effects/consul"
	"github.com/registrar-go/registrar/intent"
	"github.com/registrar-go/registrar/reducer/registration"
)

// stuckProjections is a projection store whose reads never answer: they
// wait for their context, as a read from a pool whose connections are all
// held does.
type stuckProjections struct{ reads chan struct{} }

func (p stuckProjections) Load(ctx context.Context, _ uuid.UUID) (*registration.Projection, error) {
	p.reads <- struct{}{}
	<-ctx.Done()
	return nil, ctx.Err()
}

// TestProjectionReadBounded checks that in the fenced mode the read of the
// projection is bounded by Config.Timeout like a request to the agent: a
// register or deregister whose projection cannot be read fails retryable
// within about Timeout, even under a context without a deadline, and
// names the read. (The agent is never reached: the projection is read
// first.)
func TestProjectionReadBounded(t *testing.T) {
	proj := stuckProjections{reads: make(chan struct{}, 16)}
	eff := newTestEffect(t, consul.Config{Address: "127.0.0.1:1", Projections: proj, Timeout: 100 * time.Millisecond})
	node := uuid.New()
	all := intents(node, "effect", 1)
	for _, typ := range []string{registration.IntentConsulReg, registration.IntentConsulDereg} {
		t.Run(typ, func(t *testing.T) {
			done := make(chan error, 1)
			start := time.Now()
			go func() {
				_, err := eff.Execute(context.Background(), all[typ])
				done <- err
			}()
			var err error
			select {
			case err = <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("Execute still waits for the projection 10 s on; Timeout is 100 ms")
			}
			if len(proj.reads) != 1 {
				t.Errorf("the projection was read %d times, want once", len(proj.reads))
			}
			for len(proj.reads) > 0 {
				<-proj.reads
			}
			if err == nil || !intent.IsRetryable(err) || !errors.Is(err, context.DeadlineExceeded) ||
				!strings.Contains(err.Error(), "load the projection of "+node.String()) {
				t.Errorf("a projection read that does not answer: %v (retryable %v), want a retryable deadline error naming the read",
					err, intent.IsRetryable(err))
			}
			t.Logf("failed after %v: %v", time.Since(start).Round(time.Millisecond), err)
		})
	}
}
