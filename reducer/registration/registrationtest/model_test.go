package registrationtest_test

import (
	"testing"

	"github.com/registrar-go/registrar/reducer/registration/registrationtest"
)

// TestModel runs the suite on the model itself: the suite's own test.
func TestModel(t *testing.T) {
	registrationtest.RunStore(t, func(t *testing.T) registrationtest.Subject {
		m := registrationtest.NewModel()
		return registrationtest.Subject{Store: m, Upsert: m, Update: m}
	})
}
