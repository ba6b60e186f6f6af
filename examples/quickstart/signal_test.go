package main

import (
	"bufio"
	"errors"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestQuickStartStopsOnSIGTERM builds the quick start, waits for its runtime
// to start and sends it SIGTERM, as a service manager or Kubernetes stops a
// process: the runtime stops and the program exits 0, instead of dying of
// the signal.
func TestQuickStartStopsOnSIGTERM(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no SIGTERM on windows")
	}
	bin := filepath.Join(t.TempDir(), "quickstart")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cmd := exec.Command(bin)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 64)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	var log []string
	waitFor := func(msg string) {
		t.Helper()
		deadline := time.After(30 * time.Second)
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("quick start exited before logging %q:\n%s", msg, strings.Join(log, "\n"))
				}
				log = append(log, l)
				if strings.Contains(l, msg) {
					return
				}
			case <-deadline:
				_ = cmd.Process.Kill()
				t.Fatalf("no %q logged within 30s:\n%s", msg, strings.Join(log, "\n"))
			}
		}
	}
	waitFor(`msg="runtime starting"`)
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitFor(`msg="runtime stopped"`)
	for range lines {
	}
	err = cmd.Wait()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		t.Fatalf("quick start ended with %v after SIGTERM, want exit status 0:\n%s", exit, strings.Join(log, "\n"))
	}
	if err != nil {
		t.Fatal(err)
	}
}
