package consul_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/hashicorp/consul/api"

	"github.com/registrar-go/registrar/effects/consul"
	"github.com/registrar-go/registrar/effects/consul/consultest"
	"github.com/registrar-go/registrar/intent"
	"github.com/registrar-go/registrar/reducer/registration"
)

// checkRefused executes every intent of ins with eff and checks that each
// fails retryably, naming the service id and not the token, which neither
// the log shows.
func checkRefused(t *testing.T, eff *consul.Effect, ins map[string]intent.Intent, id, token string, logs *bytes.Buffer) {
	t.Helper()
	for _, typ := range []string{registration.IntentConsulReg, registration.IntentConsulPassTTL, registration.IntentConsulDereg} {
		_, err := eff.Execute(context.Background(), ins[typ])
		if err == nil {
			t.Fatalf("%s: no error with a token the agent refuses", typ)
		}
		if !intent.IsRetryable(err) || intent.IsPermanent(err) {
			t.Errorf("%s: an ACL refusal is not retryable: %v", typ, err)
		}
		if !strings.Contains(err.Error(), id) {
			t.Errorf("%s: error does not name the service id %s: %v", typ, id, err)
		}
		if strings.Contains(err.Error(), token) {
			t.Errorf("%s: error shows the token: %v", typ, err)
		}
		t.Logf("%s: %v", typ, err)
	}
	if strings.Contains(logs.String(), token) {
		t.Errorf("log shows the token:\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), "retryable=true") {
		t.Errorf("log does not record the failures as retryable:\n%s", logs.String())
	}
}

// TestUnknownTokenIsRetryable runs the effect with a token that the agent
// does not know (not created yet, or not replicated to this datacenter
// yet): every intent fails retryably, so the runtime retries the input
// instead of dead-lettering it, and nothing shows the token.
func TestUnknownTokenIsRetryable(t *testing.T) {
	t.Parallel()
	a := consultest.Start(t, consultest.WithACL())
	node := uuid.New()
	id := registration.ServiceID("acl", node)
	ins := intents(node, "acl", 1)
	// The service exists, so that only the token stands in the way.
	admin := newTestEffect(t, consul.Config{Address: a.Addr, Token: a.ManagementToken})
	exec(t, admin, ins[registration.IntentConsulReg], intent.Applied)

	unknown := uuid.NewString()
	var logs bytes.Buffer
	eff := newTestEffect(t, consul.Config{Address: a.Addr, Token: unknown,
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	checkRefused(t, eff, ins, id, unknown, &logs)

	// Once the token exists, the same intents succeed.
	if _, _, err := a.Client.ACL().TokenCreate(&api.ACLToken{SecretID: unknown, Description: "registrar, created late",
		Policies: []*api.ACLTokenPolicyLink{{Name: writePolicy(t, a)}}}, nil); err != nil {
		t.Fatalf("create the token: %v", err)
	}
	exec(t, eff, ins[registration.IntentConsulReg], intent.Applied)
	exec(t, eff, ins[registration.IntentConsulPassTTL], intent.Applied)
	exec(t, eff, ins[registration.IntentConsulDereg], intent.Applied)
}

// TestMissingPolicyIsRetryable runs the effect with a token that the agent
// knows but that lacks the policy it needs (403 Permission denied): the
// intents fail retryably, and succeed as they are once an operator grants
// the policy.
func TestMissingPolicyIsRetryable(t *testing.T) {
	t.Parallel()
	a := consultest.Start(t, consultest.WithACL())
	tok, _, err := a.Client.ACL().TokenCreate(&api.ACLToken{Description: "registrar, no policy yet"}, nil)
	if err != nil {
		t.Fatalf("create a token: %v", err)
	}
	node := uuid.New()
	id := registration.ServiceID("acl", node)
	ins := intents(node, "acl", 1)
	// The service exists: without service:read on it, the agent answers a
	// read of a missing service with 404, as if there were no ACLs.
	admin := newTestEffect(t, consul.Config{Address: a.Addr, Token: a.ManagementToken})
	exec(t, admin, ins[registration.IntentConsulReg], intent.Applied)
	var logs bytes.Buffer
	eff := newTestEffect(t, consul.Config{Address: a.Addr, Token: tok.SecretID,
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	checkRefused(t, eff, ins, id, tok.SecretID, &logs)

	tok.Policies = []*api.ACLTokenPolicyLink{{Name: writePolicy(t, a)}}
	if _, _, err := a.Client.ACL().TokenUpdate(tok, nil); err != nil {
		t.Fatalf("grant the policy: %v", err)
	}
	exec(t, eff, ins[registration.IntentConsulReg], intent.Applied)
	exec(t, eff, ins[registration.IntentConsulPassTTL], intent.Applied)
	exec(t, eff, ins[registration.IntentConsulDereg], intent.Applied)
}

// writePolicy creates the policy the effect needs on a and returns its name.
func writePolicy(t *testing.T, a *consultest.Agent) string {
	t.Helper()
	p, _, err := a.Client.ACL().PolicyCreate(&api.ACLPolicy{
		Name:  "registrar-" + uuid.NewString()[:8],
		Rules: `service_prefix "onex-" { policy = "write" }`,
	}, nil)
	if err != nil {
		t.Fatalf("create the policy: %v", err)
	}
	return p.Name
}
