package main

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestReadmeQuickStartIsThisProgram keeps the README's quick start and this
// program identical, so the quick start always compiles.
func TestReadmeQuickStartIsThisProgram(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)```go\n(.*?)```").FindSubmatch(readme)
	if m == nil {
		t.Fatal("README has no Go code block")
	}
	src, err := os.ReadFile("main.go")
	if err != nil {
		t.Fatal(err)
	}
	// main.go has a package comment the README leaves out.
	body := string(src[strings.Index(string(src), "package main"):])
	if body != string(m[1]) {
		t.Fatalf("README quick start and examples/quickstart/main.go differ:\nREADME:\n%s\nmain.go:\n%s", m[1], body)
	}
}
