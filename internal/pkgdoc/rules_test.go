package pkgdoc

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The house rules for non-test code (DESIGN.md, STYLE.md).
const (
	maxFileLines  = 600
	maxFuncLines  = 80
	maxIfaceFuncs = 6
	maxCmdLines   = 1600 // cmd/payd stays thin: flags → one call → print
	// longFuncOK marks a table-like function allowed to be longer; its doc
	// comment must say why.
	longFuncOK = "payd:long-func"
)

// TestHouseRules fails for every non-test file over maxFileLines, function
// over maxFuncLines (unless its doc comment carries longFuncOK with a
// reason), interface over maxIfaceFuncs methods, and for cmd/payd over
// maxCmdLines in all.
func TestHouseRules(t *testing.T) {
	root := moduleRoot(t)
	cmdLines := 0
	for _, dir := range packageDirs(t, root) {
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			name := e.Name()
			if !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
				continue
			}
			path := filepath.Join(dir, name)
			rel, _ := filepath.Rel(root, path)
			lines, problems := checkFile(path)
			for _, p := range problems {
				t.Errorf("%s: %s", filepath.ToSlash(rel), p)
			}
			if filepath.ToSlash(filepath.Dir(rel)) == "cmd/payd" {
				cmdLines += lines
			}
		}
	}
	if cmdLines == 0 || cmdLines > maxCmdLines {
		t.Errorf("cmd/payd: %d lines of non-test code, want 1..%d", cmdLines, maxCmdLines)
	}
}

// checkFile returns the file's line count and what breaks the rules in it.
func checkFile(path string) (int, []string) {
	fs := token.NewFileSet()
	f, err := parser.ParseFile(fs, path, nil, parser.ParseComments)
	if err != nil {
		return 0, []string{err.Error()}
	}
	lines := fs.File(f.Pos()).LineCount()
	var problems []string
	if lines > maxFileLines {
		problems = append(problems, fmt.Sprintf("%d lines, at most %d", lines, maxFileLines))
	}
	ast.Inspect(f, func(n ast.Node) bool {
		switch x := n.(type) {
		case *ast.FuncDecl:
			n := fs.Position(x.End()).Line - fs.Position(x.Pos()).Line + 1
			if n > maxFuncLines && !strings.Contains(x.Doc.Text(), longFuncOK) {
				problems = append(problems, fmt.Sprintf("func %s: %d lines, at most %d", x.Name.Name, n, maxFuncLines))
			}
		case *ast.InterfaceType:
			if x.Methods != nil && len(x.Methods.List) > maxIfaceFuncs {
				problems = append(problems, fmt.Sprintf("line %d: an interface of %d methods, at most %d", fs.Position(x.Pos()).Line, len(x.Methods.List), maxIfaceFuncs))
			}
		}
		return true
	})
	return lines, problems
}

// TestCheckFile: the checker finds each kind of breach.
func TestCheckFile(t *testing.T) {
	dir := t.TempDir()
	var b strings.Builder
	b.WriteString("package x\n\ntype Big interface {\n")
	for i := 0; i < 7; i++ {
		fmt.Fprintf(&b, "\tM%d()\n", i)
	}
	b.WriteString("}\n\nfunc long() {\n")
	for i := 0; i < 85; i++ {
		b.WriteString("\t_ = 1\n")
	}
	b.WriteString("}\n\n// table is long on purpose (payd:long-func: one row per case).\nfunc table() {\n")
	for i := 0; i < 85; i++ {
		b.WriteString("\t_ = 1\n")
	}
	b.WriteString("}\n")
	path := filepath.Join(dir, "x.go")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	_, problems := checkFile(path)
	got := strings.Join(problems, "; ")
	if len(problems) != 2 || !strings.Contains(got, "an interface of 7 methods") || !strings.Contains(got, "func long: 87 lines") {
		t.Fatalf("problems: %s", got)
	}
}
