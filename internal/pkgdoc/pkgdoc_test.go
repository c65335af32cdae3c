package pkgdoc

import (
	"go/parser"
	"go/token"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestEveryPackageHasDoc walks the module and fails for each package
// whose files carry no doc comment that starts as Go's conventions ask:
// "Package x" for a library, "Command x" (or "Package main") for a command.
func TestEveryPackageHasDoc(t *testing.T) {
	root := moduleRoot(t)
	dirs := packageDirs(t, root)
	if len(dirs) < 10 {
		t.Fatalf("found %d packages under %s, want the whole module", len(dirs), root)
	}
	for _, dir := range dirs {
		rel, _ := filepath.Rel(root, dir)
		if err := checkDoc(dir); err != "" {
			t.Errorf("%s: %s", filepath.ToSlash(rel), err)
		}
	}
}

// TestCheckDoc: the check itself, on packages written for it.
func TestCheckDoc(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		want  string
	}{
		{"documented", map[string]string{"a.go": "// Package x does things.\npackage x\n", "b.go": "package x\n"}, ""},
		{"command", map[string]string{"main.go": "// Command payd runs things.\npackage main\n"}, ""},
		{"none", map[string]string{"a.go": "package x\n", "a_test.go": "// Package x is tested.\npackage x\n"}, `package x: no doc comment ("// Package x ...")`},
		{"wrong start", map[string]string{"a.go": "// This package does things.\npackage x\n"}, `package x: doc comment starts "This package does things.", want "Package x ..."`},
		{"detached", map[string]string{"a.go": "// Package x does things.\n\npackage x\n"}, `package x: no doc comment ("// Package x ...")`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, src := range tt.files {
				if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			if got := checkDoc(dir); got != tt.want {
				t.Errorf("checkDoc = %q, want %q", got, tt.want)
			}
		})
	}
}

// checkDoc returns what is wrong with the package doc of the Go package
// in dir (its non-test files), or "".
func checkDoc(dir string) string {
	docs := map[string][]string{} // package name → the doc comments of its files
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err.Error()
	}
	fset := token.NewFileSet()
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(dir, name), nil, parser.ParseComments|parser.PackageClauseOnly)
		if err != nil {
			return err.Error()
		}
		docs[f.Name.Name] = append(docs[f.Name.Name], f.Doc.Text())
	}
	var problems []string
	for _, pkg := range slices.Sorted(maps.Keys(docs)) {
		if p := packageProblem(pkg, docs[pkg]); p != "" {
			problems = append(problems, p)
		}
	}
	return strings.Join(problems, "; ")
}

// packageProblem checks the doc comments of one package's files: one must
// start "Package name " ("Command " also does for main).
func packageProblem(name string, docs []string) string {
	want := []string{"Package " + name + " "}
	if name == "main" {
		want = append(want, "Command ")
	}
	var first string
	for _, text := range docs {
		for _, w := range want {
			if strings.HasPrefix(text, w) {
				return ""
			}
		}
		if first == "" && text != "" {
			first, _, _ = strings.Cut(text, "\n")
		}
	}
	if first != "" {
		return "package " + name + ": doc comment starts \"" + first + "\", want \"" + strings.TrimSpace(want[0]) + " ...\""
	}
	return "package " + name + ": no doc comment (\"// " + strings.TrimSpace(want[0]) + " ...\")"
}

// moduleRoot is the nearest directory above the test holding go.mod.
func moduleRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test")
		}
		dir = parent
	}
}

// packageDirs lists the directories under root holding non-test Go files,
// skipping what the go command skips: testdata, vendor, and names starting
// with "." or "_".
func packageDirs(t *testing.T, root string) []string {
	t.Helper()
	var dirs []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if path != root && (name == "testdata" || name == "vendor" || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_")) {
				return filepath.SkipDir
			}
			return nil
		}
		if strings.HasSuffix(name, ".go") && !strings.HasSuffix(name, "_test.go") {
			if dir := filepath.Dir(path); !slices.Contains(dirs, dir) {
				dirs = append(dirs, dir)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return dirs
}
