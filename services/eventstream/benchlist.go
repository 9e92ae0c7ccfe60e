package eventstream

import (
	"bufio"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// BenchFunc is one `func BenchmarkXxx(b *testing.B)` of a package's tests.
type BenchFunc struct {
	Package string // import path without modulePrefix, as in the table
	Name    string
}

func (f BenchFunc) String() string { return f.Package + " " + f.Name }

// ListBenchmarks finds every benchmark function in the Go test files under
// root: what `go test -bench .` over root's modules runs, so what the table
// of `make bench` must show. Each file's package is its module's path (from
// the nearest go.mod above it) joined with its folder. Folders go ignores
// (testdata, and names starting with "." or "_") and node_modules are skipped.
func ListBenchmarks(root string) ([]BenchFunc, error) {
	modules := map[string]string{} // folder → module path of the go.mod in it
	var out []BenchFunc
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if p != root && (name == "testdata" || name == "node_modules" || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_")) {
				return filepath.SkipDir
			}
			mod, err := modulePath(filepath.Join(p, "go.mod"))
			if err != nil {
				return err
			}
			if mod != "" {
				modules[p] = mod
			}
			return nil
		}
		if !strings.HasSuffix(name, "_test.go") {
			return nil
		}
		pkg, ok := importPath(modules, root, filepath.Dir(p))
		if !ok {
			return nil // not in a module: go test does not run it
		}
		f, err := parser.ParseFile(fset, p, nil, parser.SkipObjectResolution)
		if err != nil {
			return fmt.Errorf("parsing %s: %w", p, err)
		}
		for _, decl := range f.Decls {
			if fn, ok := decl.(*ast.FuncDecl); ok && isBenchmark(fn) {
				out = append(out, BenchFunc{Package: strings.TrimPrefix(pkg, modulePrefix), Name: fn.Name.Name})
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("listing benchmarks under %s: %w", root, err)
	}
	slices.SortFunc(out, func(a, b BenchFunc) int { return strings.Compare(a.String(), b.String()) })
	return slices.Compact(out), nil
}

// isBenchmark applies go test's rule: a top-level func named Benchmark or
// BenchmarkXxx (Xxx not starting with a lower-case letter) taking one
// *testing.B.
func isBenchmark(fn *ast.FuncDecl) bool {
	rest, ok := strings.CutPrefix(fn.Name.Name, "Benchmark")
	if !ok || fn.Recv != nil {
		return false
	}
	if r, _ := utf8.DecodeRuneInString(rest); rest != "" && unicode.IsLower(r) {
		return false
	}
	params := fn.Type.Params.List
	if len(params) != 1 || len(params[0].Names) > 1 {
		return false
	}
	star, ok := params[0].Type.(*ast.StarExpr)
	if !ok {
		return false
	}
	sel, ok := star.X.(*ast.SelectorExpr)
	return ok && sel.Sel.Name == "B"
}

// importPath is the import path of the package in dir: the module of the
// nearest folder at or above dir (up to root) with a go.mod, and the path
// from there.
func importPath(modules map[string]string, root, dir string) (string, bool) {
	var rel []string
	for d := dir; ; d = filepath.Dir(d) {
		if mod, ok := modules[d]; ok {
			slices.Reverse(rel)
			return path.Join(append([]string{mod}, rel...)...), true
		}
		if d == root || d == filepath.Dir(d) {
			return "", false
		}
		rel = append(rel, filepath.Base(d))
	}
}

// modulePath reads the module line of a go.mod; "" when there is no such file.
func modulePath(gomod string) (string, error) {
	f, err := os.Open(gomod)
	if os.IsNotExist(err) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("opening %s: %w", gomod, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "module "); ok {
			return strings.Trim(strings.TrimSpace(rest), `"`), nil
		}
	}
	if err := sc.Err(); err != nil {
		return "", fmt.Errorf("reading %s: %w", gomod, err)
	}
	return "", fmt.Errorf("%s has no module line", gomod)
}
