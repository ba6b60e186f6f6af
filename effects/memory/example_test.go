package memory_test

import (
	"context"
	"fmt"

	"github.com/google/uuid"

	"github.com/registrar-go/registrar/effects/memory"
	"github.com/registrar-go/registrar/intent"
	"github.com/registrar-go/registrar/reducer/registration"
)

// A service finds its active peers of one type through the read API, a
// page at a time.
func ExampleStore_List() {
	ctx := context.Background()
	store := memory.NewStore(memory.StoreConfig{})
	for i, typ := range []string{"effect", "compute", "effect", "effect"} {
		st := registration.StateActive
		if i == 3 {
			st = registration.StateLivenessExpired
		}
		p := registration.Projection{EntityID: uuid.MustParse(fmt.Sprintf("00000000-0000-4000-8000-00000000000%d", i)),
			Domain: registration.DefaultDomain, State: st, NodeType: typ}
		if _, err := store.Execute(ctx, intent.Intent{Type: registration.IntentUpsert,
			Payload: &registration.UpsertRegistration{Projection: p}}); err != nil {
			panic(err)
		}
	}

	q := registration.Query{States: []registration.State{registration.StateActive}, NodeType: "effect", Limit: 1}
	for {
		page, err := store.List(ctx, q)
		if err != nil {
			panic(err)
		}
		for _, p := range page.Items {
			fmt.Println(p.EntityID, p.State)
		}
		if page.Next == "" {
			break
		}
		q.Cursor = page.Next
	}
	counts, _ := store.CountByState(ctx)
	fmt.Println(counts[registration.StateActive], "active")
	// Output:
	// 00000000-0000-4000-8000-000000000000 active
	// 00000000-0000-4000-8000-000000000002 active
	// 3 active
}
