// Package browsertest starts a real headless Chromium for tests of the
// status page (package httpapi) and drives it with chromedp. The browser
// is the one testenv.Chromium finds; under CI a missing browser fails the
// test.
//
// Every JavaScript exception and every console error the page raises (a
// Content-Security-Policy violation is one) fails the test: a page that
// works only because its errors go unseen is broken.
package browsertest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/registrar-go/registrar/internal/testenv"
)

// Option configures [New].
type Option func(*config)

type config struct {
	noScript bool
	width    int64
	height   int64
}

// WithoutJavaScript disables the page's scripts, as a browser without
// JavaScript shows it.
func WithoutJavaScript() Option { return func(c *config) { c.noScript = true } }

// WithWindow sets the viewport size (1280x900 by default).
func WithWindow(width, height int64) Option {
	return func(c *config) { c.width, c.height = width, height }
}

// Browser is one headless Chromium tab.
type Browser struct {
	// Ctx is the chromedp context of the tab; pass it to chromedp.Run.
	Ctx context.Context

	t      testing.TB
	mu     sync.Mutex
	errors []string
}

// New starts Chromium with a fresh profile and opens a tab; both are
// closed when the test ends. Chromium's own network use (updates, sync,
// QUIC) is off: the test machine reaches only localhost.
func New(t testing.TB, opts ...Option) *Browser {
	t.Helper()
	c := config{width: 1280, height: 900}
	for _, o := range opts {
		o(&c)
	}
	exe := testenv.Chromium(t)
	profile := t.TempDir()
	flags := append([]chromedp.ExecAllocatorOption{},
		chromedp.ExecPath(exe),
		chromedp.UserDataDir(profile),
		chromedp.Headless,
		chromedp.NoSandbox, // the tests run as root on CI
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.WindowSize(int(c.width), int(c.height)),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), flags...)
	b := &Browser{t: t}
	ctx, cancelTab := chromedp.NewContext(actx, chromedp.WithListener(func(ev any) {
		switch e := ev.(type) {
		case *runtime.EventExceptionThrown:
			b.record("exception: " + (&chromedp.ExceptionError{ExceptionDetails: e.ExceptionDetails}).Error())
		case *runtime.EventConsoleAPICalled:
			if e.Type == runtime.ConsoleAPICalledTypeError {
				b.record(fmt.Sprintf("console.error: %s", remoteArgs(e.Args)))
			}
		case *cdplog.EventEntryAdded:
			if e.Entry != nil && e.Entry.Level == cdplog.EntryLevelError {
				b.record("log: " + e.Entry.Text + " " + e.Entry.URL)
			}
		}
	}))
	b.Ctx = ctx
	// The first call starts the browser, and the browser lives as long as
	// that call's context: no timeout on it.
	if _, err := chromedp.Call(ctx, cdplog.Enable, cdp.Empty{}); err != nil {
		cancelTab()
		cancelAlloc()
		t.Fatalf("start chromium %s: %v", exe, err)
	}
	if _, err := chromedp.Call(ctx, emulation.SetDeviceMetricsOverride, emulation.SetDeviceMetricsOverrideParams{Width: c.width, Height: c.height, DeviceScaleFactor: 1}); err != nil {
		t.Fatalf("chromium: set the viewport: %v", err)
	}
	if c.noScript {
		if _, err := chromedp.Call(ctx, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true}); err != nil {
			t.Fatalf("chromium: disable JavaScript: %v", err)
		}
	}
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc()
		b.mu.Lock()
		defer b.mu.Unlock()
		for _, e := range b.errors {
			t.Errorf("the page raised %s", e)
		}
	})
	return b
}

// remoteArgs writes the arguments of a console call.
func remoteArgs(args []*runtime.RemoteObject) string {
	var out []string
	for _, a := range args {
		if a.Value != nil {
			out = append(out, string(a.Value))
		} else {
			out = append(out, a.Description)
		}
	}
	return strings.Join(out, " ")
}

func (b *Browser) record(s string) {
	b.mu.Lock()
	b.errors = append(b.errors, s)
	b.mu.Unlock()
}

// Do runs actions in the tab with a timeout, failing the test on error.
func (b *Browser) Do(timeout time.Duration, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.Ctx, timeout)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.t.Fatalf("browser: %v", err)
	}
}

// Eval evaluates a JavaScript expression in the page and returns its
// value, failing the test on error.
func Eval[T any](b *Browser, expr string) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.Ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		b.t.Fatalf("browser: evaluate %s: %v", expr, err)
	}
	return v
}

// Screenshot saves a full-page PNG of the tab as dir/name and returns its
// path.
func (b *Browser) Screenshot(dir, name string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.Ctx, 30*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("browser: screenshot: %v", err)
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		b.t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, png, 0o600); err != nil {
		b.t.Fatal(err)
	}
	return p
}

// TryEval is Eval that returns the error instead of failing the test:
// for polling while the page navigates (an evaluation during a
// navigation fails).
func TryEval[T any](b *Browser, expr string) (T, error) {
	ctx, cancel := context.WithTimeout(b.Ctx, 30*time.Second)
	defer cancel()
	return chromedp.Run(ctx, chromedp.Evaluate[T](expr))
}

// EnvArtifacts names a directory that keeps the tests' screenshots after
// the run (make test sets it to .artifacts in the checkout).
const EnvArtifacts = "REGISTRAR_ARTIFACTS"

// ArtifactDir is where t saves its screenshots: EnvArtifacts/<test name>
// when it is set, else t.ArtifactDir() (kept with go test -artifacts,
// removed after the test otherwise).
func ArtifactDir(t *testing.T) string {
	t.Helper()
	if d := os.Getenv(EnvArtifacts); d != "" {
		return filepath.Join(d, strings.ReplaceAll(t.Name(), "/", "_"))
	}
	return t.ArtifactDir()
}
