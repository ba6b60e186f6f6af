package httpapi_test

import (
	"fmt"
	"io"
	"net/http/httptest"

	"github.com/registrar-go/registrar/effects/memory"
	"github.com/registrar-go/registrar/hooks"
	"github.com/registrar-go/registrar/httpapi"
)

// Example mounts the API and the status page of a store. A Runtime would
// get the Transitions as a hook: registrar.WithHooks(tr), and its Stats
// method through httpapi.WithStats.
func Example() {
	store := memory.NewStore(memory.StoreConfig{})
	tr := httpapi.NewTransitions(0)
	if _, err := hooks.New(tr); err != nil { // what registrar.WithHooks checks
		panic(err)
	}
	api, err := httpapi.New(store, httpapi.WithTransitions(tr))
	if err != nil {
		panic(err)
	}
	srv := httptest.NewServer(api) // in a service: mux.Handle("/", api)
	defer srv.Close()

	resp, err := srv.Client().Get(srv.URL + "/v1/stats")
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Print(resp.Status, " ", string(body))
	// Output:
	// 200 OK {"total":0,"by_state":{"accepted":0,"ack_received":0,"ack_timed_out":0,"active":0,"awaiting_ack":0,"liveness_expired":0,"pending_registration":0,"rejected":0},"transitions_recorded":0}
}
