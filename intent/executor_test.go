package intent_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/registrar-go/registrar/intent"
)

type recorder struct {
	seen []string
	fail map[string]error
	res  map[string]intent.Result
}

func (r *recorder) Execute(_ context.Context, in intent.Intent) (intent.Result, error) {
	r.seen = append(r.seen, in.Target)
	if err := r.fail[in.Target]; err != nil {
		return intent.Result{}, err
	}
	return r.res[in.Target], nil
}

func TestExecutorRoutesAndStopsAtFirstFailure(t *testing.T) {
	ex := intent.NewExecutor()
	a := &recorder{fail: map[string]error{"a2": errors.New("disk full")}}
	b := &recorder{}
	if err := ex.Register("t.a", a); err != nil {
		t.Fatal(err)
	}
	if err := ex.Register("t.b", b); err != nil {
		t.Fatal(err)
	}
	ins := []intent.Intent{{Type: "t.a", Target: "a1"}, {Type: "t.b", Target: "b1"}, {Type: "t.a", Target: "a2"}, {Type: "t.b", Target: "b2"}}
	res, err := ex.ExecuteAll(context.Background(), ins)
	var ee *intent.ExecError
	if !errors.As(err, &ee) || ee.Index != 2 || ee.Type != "t.a" || ee.Target != "a2" {
		t.Fatalf("error %v, want an ExecError for intent 2", err)
	}
	if !strings.Contains(err.Error(), "disk full") || len(res) != 2 {
		t.Fatalf("error %q, %d results", err, len(res))
	}
	if got := strings.Join(append(a.seen, b.seen...), ","); got != "a1,a2,b1" {
		t.Fatalf("executed %s; b2 must not run after a2 failed", got)
	}
}

func TestExecutorStopsAtConflict(t *testing.T) {
	ex := intent.NewExecutor()
	r := &recorder{res: map[string]intent.Result{"x1": {Status: intent.Conflict, Reason: "moved"}}}
	_ = ex.Register("t", r)
	res, err := ex.ExecuteAll(context.Background(), []intent.Intent{{Type: "t", Target: "x1"}, {Type: "t", Target: "x2"}})
	if err != nil || len(res) != 1 || res[0].Status != intent.Conflict || len(r.seen) != 1 {
		t.Fatalf("results %+v, err %v, executed %v", res, err, r.seen)
	}
}

func TestExecutorUnregisteredTypeNamesIt(t *testing.T) {
	ex := intent.NewExecutor()
	_, err := ex.Execute(context.Background(), intent.Intent{Type: "postgres.update_registration"})
	if !errors.Is(err, intent.ErrNoEffect) {
		t.Fatalf("error %v does not wrap ErrNoEffect", err)
	}
	want := `no effect registered for intent type "postgres.update_registration"`
	if !strings.Contains(err.Error(), want) {
		t.Fatalf("error %q does not say %q", err, want)
	}
	if !intent.IsPermanent(err) {
		t.Fatal("a missing effect is not permanent")
	}
}

func TestExecutorRegisterErrors(t *testing.T) {
	ex := intent.NewExecutor()
	if err := ex.Register("", &recorder{}); err == nil {
		t.Error("empty type accepted")
	}
	if err := ex.Register("t", nil); err == nil {
		t.Error("nil effect accepted")
	}
	_ = ex.Register("t", &recorder{})
	if err := ex.Register("t", &recorder{}); err == nil || !strings.Contains(err.Error(), `"t"`) {
		t.Errorf("duplicate registration: %v", err)
	}
	if got := ex.Types(); len(got) != 1 || got[0] != "t" {
		t.Errorf("types %v", got)
	}
}

func TestCheckRoutesNamesEveryMissingType(t *testing.T) {
	ex := intent.NewExecutor()
	_ = ex.Register("consul.register", &recorder{})
	err := ex.CheckRoutes([]string{"consul.register", "postgres.upsert_registration", "postgres.update_registration"})
	if err == nil {
		t.Fatal("missing routes not reported")
	}
	for _, typ := range []string{"postgres.upsert_registration", "postgres.update_registration"} {
		if !strings.Contains(err.Error(), fmt.Sprintf("%q", typ)) {
			t.Errorf("%v does not name %s", err, typ)
		}
	}
	if strings.Contains(err.Error(), `"consul.register"`) {
		t.Errorf("%v names a routed type that has an effect", err)
	}
	if err := ex.CheckRoutes([]string{"consul.register"}); err != nil {
		t.Errorf("complete routes: %v", err)
	}
}

func TestErrorMarks(t *testing.T) {
	base := errors.New("boom")
	r := fmt.Errorf("wrapped: %w", intent.Retryable(base))
	if !intent.IsRetryable(r) || intent.IsPermanent(r) || !errors.Is(r, base) {
		t.Errorf("retryable mark lost: %v", r)
	}
	p := fmt.Errorf("wrapped: %w", intent.Permanent(base))
	if !intent.IsPermanent(p) || intent.IsRetryable(p) || !errors.Is(p, base) {
		t.Errorf("permanent mark lost: %v", p)
	}
	if intent.Retryable(nil) != nil || intent.Permanent(nil) != nil {
		t.Error("marking nil is not nil")
	}
	if intent.IsRetryable(base) || intent.IsPermanent(base) {
		t.Error("an unmarked error is marked")
	}
}

func TestStatusString(t *testing.T) {
	for s, want := range map[intent.Status]string{intent.Applied: "applied", intent.Skipped: "skipped", intent.Conflict: "conflict", 9: "status(9)"} {
		if s.String() != want {
			t.Errorf("%d: %q", s, s.String())
		}
	}
}

// ExampleExecutor routes intents to effects and reports a type that has none.
func ExampleExecutor() {
	ex := intent.NewExecutor()
	_ = ex.Register("postgres.upsert_registration", intent.EffectFunc(func(_ context.Context, in intent.Intent) (intent.Result, error) {
		fmt.Println("upsert", in.Target)
		return intent.Result{}, nil
	}))
	_, err := ex.ExecuteAll(context.Background(), []intent.Intent{
		{Type: "postgres.upsert_registration", Target: "node-1"},
		{Type: "postgres.update_registration", Target: "node-1"},
	})
	fmt.Println(err)
	fmt.Println(ex.CheckRoutes([]string{"postgres.update_registration"}))
	// Output:
	// upsert node-1
	// intent 1 (postgres.update_registration node-1): registrar/intent: no effect registered for intent type "postgres.update_registration"
	// registrar/intent: no effect registered for intent type "postgres.update_registration"
}
