package main

import (
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// readme is the repository's README.md.
func readme(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// section returns the README's section under the heading "## title", up to
// the next heading of that level.
func section(t *testing.T, md, title string) string {
	t.Helper()
	_, rest, ok := strings.Cut(md, "\n## "+title+"\n")
	if !ok {
		t.Fatalf("README.md has no section %q", title)
	}
	if i := strings.Index(rest, "\n## "); i >= 0 {
		rest = rest[:i]
	}
	return rest
}

// fence matches a fenced code block: its language and its text.
var fence = regexp.MustCompile("(?ms)^```([a-z]*)\n(.*?)^```$")

// blocks returns the text of md's code blocks in language lang.
func blocks(md, lang string) []string {
	var out []string
	for _, m := range fence.FindAllStringSubmatch(md, -1) {
		if m[1] == lang {
			out = append(out, m[2])
		}
	}
	return out
}

// The README's quick start is this program, byte for byte, so what a
// newcomer copies is what the tests build and drive in Chromium.
func TestReadmeIsTheProgram(t *testing.T) {
	qs := section(t, readme(t), "Quick start")
	for _, f := range []struct{ lang, file string }{{"go", "main.go"}, {"html", "nav.html"}} {
		want, err := os.ReadFile(f.file)
		if err != nil {
			t.Fatal(err)
		}
		got := blocks(qs, f.lang)
		if len(got) != 1 {
			t.Errorf("the Quick start section has %d %s blocks, want 1: %s", len(got), f.lang, f.file)
			continue
		}
		if got[0] != string(want) {
			t.Errorf("the Quick start's %s block differs from examples/quickstart/%s: copy the file into README.md", f.lang, f.file)
		}
	}
}

// Every complete program in the README (a Go block that starts with
// "package") is one of the programs under examples/, so each of them is
// built and tested; snippets are fragments.
func TestReadmeProgramsAreExamples(t *testing.T) {
	mains, err := filepath.Glob(filepath.Join("..", "*", "main.go"))
	if err != nil {
		t.Fatal(err)
	}
	known := map[string]bool{}
	for _, path := range mains {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		known[string(data)] = true
	}
	for _, b := range blocks(readme(t), "go") {
		if strings.HasPrefix(b, "package ") && !known[b] {
			t.Errorf("README.md has a program that is no examples/*/main.go, so nothing compiles it:\n%s", b)
		}
	}
}

// The quick start and the demo ("usersessions demo", 127.0.0.1:8080) run
// side by side: following the README in order must not give "address
// already in use" (issue 18, item 15). The README says where each one is.
func TestQuickStartPortIsNotTheDemos(t *testing.T) {
	md := readme(t)
	f := flag.Lookup("addr")
	if f == nil {
		t.Fatal("the program has no -addr flag")
	}
	addr := f.DefValue
	_, port, _ := strings.Cut(addr, ":")
	demo := regexp.MustCompile(`demo app on http://127\.0\.0\.1:(\d+)/`).FindStringSubmatch(section(t, md, "Two commands"))
	if demo == nil {
		t.Fatal(`the README's "Two commands" does not say where the demo listens`)
	}
	if port == demo[1] {
		t.Errorf("the quick start listens on %s, the port of the demo", addr)
	}
	if qs := section(t, md, "Quick start"); !strings.Contains(qs, "http://"+addr+"/login") {
		t.Errorf("the Quick start section does not say to open http://%s/login", addr)
	}
}
