package deploytest

import (
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// dockerfileBuild is what one Dockerfile's build stage does: the paths its
// COPY lines take from the build context (the repository root), the
// environment of its ENV lines, and the `cd <dir> && go build ... <pkg>` of
// its service binary.
type dockerfileBuild struct {
	copies  [][2]string // context path, path in the image (relative to WORKDIR unless absolute)
	workdir string
	env     []string
	dir     string // the directory `go build` runs in, relative to workdir
	pkg     string
}

var (
	copyLine    = regexp.MustCompile(`(?m)^COPY\s+(\S+)\s+(\S+)\s*$`)
	workdirLine = regexp.MustCompile(`(?m)^WORKDIR\s+(\S+)\s*$`)
	envLine     = regexp.MustCompile(`(?m)^ENV\s+(.+)$`)
	// localReplace is a go.mod replace by a directory.
	localReplace = regexp.MustCompile(`(?m)=>\s*(\.\.?/\S*)\s*$`)
	buildCmd     = regexp.MustCompile(`cd (\S+) && go build\b[^\n]*\s(\./cmd/\S+)\s*$`)
)

// parseDockerfileBuild reads the build stage of deploy/docker/<svc>.Dockerfile
// (the lines before the final FROM). COPY --from lines copy between stages
// and are not inputs from the context, so the pattern skips them.
func parseDockerfileBuild(t *testing.T, svc string) dockerfileBuild {
	t.Helper()
	df := string(readRepoFile(t, "deploy/docker/"+svc+".Dockerfile"))
	if i := strings.Index(df, "\nFROM scratch"); i >= 0 {
		df = df[:i]
	}
	var b dockerfileBuild
	for _, m := range copyLine.FindAllStringSubmatch(df, -1) {
		b.copies = append(b.copies, [2]string{m[1], m[2]})
	}
	if m := workdirLine.FindStringSubmatch(df); m != nil {
		b.workdir = m[1]
	}
	for _, m := range envLine.FindAllStringSubmatch(df, -1) {
		b.env = append(b.env, strings.Fields(m[1])...)
	}
	for _, l := range strings.Split(strings.ReplaceAll(df, "\\\n", " "), "\n") {
		if m := buildCmd.FindStringSubmatch(l); m != nil {
			b.dir, b.pkg = m[1], m[2]
		}
	}
	if len(b.copies) == 0 || b.workdir == "" || b.pkg == "" {
		t.Fatalf("deploy/docker/%s.Dockerfile: no COPY, WORKDIR or `cd <dir> && go build ... ./cmd/<name>` found", svc)
	}
	return b
}

// Each service Dockerfile builds from what it copies: its COPY lines are
// applied to an empty directory (honouring .dockerignore's simple patterns)
// and its `go build` runs there with its ENV (GOWORK=off), so a go.mod
// replace pointing at a directory the Dockerfile leaves out fails here, not
// in someone's `docker build`. The module and build caches are the host's.
func TestDockerfilesBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("builds every service binary the way its Dockerfile does")
	}
	ignored := dockerignore(t)
	for _, svc := range imageServices {
		t.Run(svc, func(t *testing.T) {
			b := parseDockerfileBuild(t, svc)
			root := t.TempDir()
			for _, c := range b.copies {
				dst := c[1]
				if !path.IsAbs(dst) {
					dst = path.Join(b.workdir, dst)
				}
				copyContext(t, c[0], filepath.Join(root, filepath.FromSlash(dst)), ignored)
			}
			dir := filepath.Join(root, filepath.FromSlash(b.workdir), filepath.FromSlash(b.dir))
			// Every replace of go.mod resolves, even one the build itself
			// does not read (go list -m all and go mod verify do).
			gomod, err := os.ReadFile(filepath.Join(dir, "go.mod"))
			if err != nil {
				t.Fatalf("deploy/docker/%s.Dockerfile builds in %s, which has no go.mod: %v", svc, b.dir, err)
			}
			for _, m := range localReplace.FindAllStringSubmatch(string(gomod), -1) {
				if _, err := os.Stat(filepath.Join(dir, m[1], "go.mod")); err != nil {
					t.Errorf("deploy/docker/%s.Dockerfile does not copy %s (%s/go.mod replaces a module with it)", svc, path.Join(b.dir, m[1]), b.dir)
				}
			}
			out := filepath.Join(t.TempDir(), svc)
			cmd := exec.Command("go", "build", "-o", out, b.pkg)
			cmd.Dir = dir
			cmd.Env = append(os.Environ(), b.env...)
			if o, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("deploy/docker/%s.Dockerfile: go build %s in %s with %v and only %v copied: %v\n%s",
					svc, b.pkg, b.dir, b.env, b.copies, err, o)
			}
			if _, err := os.Stat(out); err != nil {
				t.Fatalf("no binary: %v", err)
			}
		})
	}
}

// dockerignore returns a matcher for .dockerignore's patterns (path.Match
// patterns, "**/" for any depth), which keeps ignored files out of the context.
func dockerignore(t *testing.T) func(rel string) bool {
	t.Helper()
	var patterns []string
	for _, l := range strings.Split(string(readRepoFile(t, ".dockerignore")), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			if strings.HasPrefix(l, "!") {
				t.Fatalf(".dockerignore: exception %q is not supported by this test", l)
			}
			patterns = append(patterns, strings.TrimPrefix(l, "/"))
		}
	}
	return func(rel string) bool {
		for _, p := range patterns {
			if ok, _ := path.Match(p, rel); ok {
				return true
			}
			if rest, ok := strings.CutPrefix(p, "**/"); ok {
				if m, _ := path.Match(rest, path.Base(rel)); m {
					return true
				}
			}
		}
		return false
	}
}

// copyContext copies the context path src (a file or a directory, relative
// to the repository root) to dst, skipping ignored paths.
func copyContext(t *testing.T, src, dst string, ignored func(string) bool) {
	t.Helper()
	src = strings.TrimSuffix(src, "/")
	err := filepath.WalkDir(filepath.Join(repoRoot, src), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(repoRoot, p)
		rel = filepath.ToSlash(rel)
		if ignored(rel) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		target := filepath.Join(dst, strings.TrimPrefix(rel, src))
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			return err
		}
		return os.WriteFile(target, data, 0o644)
	})
	if err != nil {
		t.Fatalf("copying %s: %v", src, err)
	}
}
