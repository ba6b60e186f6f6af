package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestShutdownBounded: a step that fails is reported and the next runs; a
// step that outlives -shutdown-timeout is left behind, the steps after it
// still start, and the shutdown returns at the deadline with an error that
// names the step.
func TestShutdownBounded(t *testing.T) {
	a := &app{cfg: config{shutdownTimeout: 200 * time.Millisecond}, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	var mu sync.Mutex
	var ran []string
	step := func(name string, fn func(ctx context.Context) error) shutdownStep {
		return shutdownStep{name: name, run: func(ctx context.Context) error {
			mu.Lock()
			ran = append(ran, name)
			mu.Unlock()
			return fn(ctx)
		}}
	}
	release, afterRan := make(chan struct{}), make(chan struct{})
	defer close(release)
	start := time.Now()
	err := a.runSteps([]shutdownStep{
		step("fails", func(context.Context) error { return errors.New("boom") }),
		step("hangs", func(context.Context) error { <-release; return nil }),
		step("after", func(context.Context) error { close(afterRan); return nil }),
	})
	took := time.Since(start)
	if err == nil || !strings.Contains(err.Error(), "shutdown step fails: boom") ||
		!strings.Contains(err.Error(), "shutdown step hangs: did not finish within -shutdown-timeout") {
		t.Errorf("error %v; want both the failure and the timeout named", err)
	}
	if took > 2*time.Second {
		t.Errorf("shutdown took %v with a 200ms timeout", took)
	}
	select { // "after" runs in its goroutine, maybe after runSteps returned
	case <-afterRan:
	case <-time.After(5 * time.Second):
		t.Fatal("the step after the one that timed out never ran")
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(ran, []string{"fails", "hangs", "after"}) {
		t.Errorf("steps ran %q", ran)
	}
}
