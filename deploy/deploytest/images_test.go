package deploytest

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/x509"
	"debug/elf"
	"encoding/pem"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/eventstream/eventstream/deploy/image"
)

// imageServices are the images `make images` builds (IMAGES in the Makefile).
var imageServices = []string{"ingest", "delivery", "configapi", "observability", "eventstream"}

// imageTarballs returns service → tarball: the ones `make images` wrote when
// EVENTSTREAM_IMAGES names their directory (make test does), otherwise
// images built here the same way (static binaries, then package image).
func imageTarballs(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	if dir := os.Getenv("EVENTSTREAM_IMAGES"); dir != "" {
		for _, svc := range imageServices {
			out[svc] = filepath.Join(dir, svc+".tar")
		}
		return out
	}
	if testing.Short() {
		t.Skip("builds four static binaries; run `make images` and set EVENTSTREAM_IMAGES, or drop -short")
	}
	dir := t.TempDir()
	// Stamped like `make images` and the Dockerfiles do, so runVersion
	// checks the flag prints the image's version.
	args := []string{"build", "-trimpath", "-ldflags=-X main.version=test", "-o", dir + "/"}
	for _, svc := range imageServices {
		args = append(args, "./services/"+svc+"/cmd/"+svc)
	}
	args = append(args, "./deploy/cmd/probe")
	cmd := exec.Command("go", args...)
	cmd.Dir = repoRoot
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	for _, svc := range imageServices {
		img, err := image.Build(image.Spec{Service: svc, Binary: filepath.Join(dir, svc), Probe: filepath.Join(dir, "probe"),
			CABundle: "/etc/ssl/certs/ca-certificates.crt", Version: "test", Created: time.Unix(0, 0).UTC()})
		if err != nil {
			t.Fatal(err)
		}
		out[svc] = filepath.Join(dir, svc+".tar")
		if err := image.WriteTarball(img, "eventstream/"+svc+":test", out[svc]); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// Each image tarball: OCI manifest, the numeric non-root user, the entrypoint,
// a usable CA bundle, a passwd entry, root-owned read-only binaries that are
// static, and a binary that runs: --version prints the image's version.
func TestImages(t *testing.T) {
	for svc, path := range imageTarballs(t) {
		t.Run(svc, func(t *testing.T) {
			img, err := tarball.ImageFromPath(path, nil)
			if err != nil {
				t.Fatalf("opening %s: %v", path, err)
			}
			if mt, _ := img.MediaType(); mt != types.OCIManifestSchema1 && mt != types.DockerManifestSchema2 {
				t.Errorf("manifest media type %s", mt)
			}
			cf, err := img.ConfigFile()
			if err != nil {
				t.Fatal(err)
			}
			if cf.Config.User != "65532:65532" {
				t.Errorf("user %q, want 65532:65532", cf.Config.User)
			}
			entry := "/usr/local/bin/" + svc
			if !slices.Equal(cf.Config.Entrypoint, []string{entry}) {
				t.Errorf("entrypoint %v, want [%s]", cf.Config.Entrypoint, entry)
			}
			if cf.OS != "linux" {
				t.Errorf("os %q", cf.OS)
			}
			files := extract(t, mutate.Extract(img))

			ca := files["etc/ssl/certs/ca-certificates.crt"]
			if ca == nil {
				t.Fatal("no /etc/ssl/certs/ca-certificates.crt")
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(ca.data) {
				t.Error("the CA bundle holds no certificate")
			}
			n := 0
			for rest := ca.data; ; n++ {
				var b *pem.Block
				if b, rest = pem.Decode(rest); b == nil {
					break
				}
			}
			if n < 50 {
				t.Errorf("the CA bundle holds %d certificates; want the full Debian bundle", n)
			}
			if p := files["etc/passwd"]; p == nil || !strings.Contains(string(p.data), ":65532:65532:") {
				t.Error("/etc/passwd has no entry for 65532")
			}
			if d := files["tmp"]; d == nil || d.hdr.Mode&0o1777 != 0o1777 {
				t.Error("no world-writable sticky /tmp")
			}
			for _, bin := range []string{svc, "probe"} {
				f := files["usr/local/bin/"+bin]
				if f == nil {
					t.Fatalf("no /usr/local/bin/%s", bin)
				}
				if f.hdr.Uid != 0 || f.hdr.Mode&0o222 != 0 || f.hdr.Mode&0o111 == 0 {
					t.Errorf("/usr/local/bin/%s: uid %d mode %o; want root-owned, executable, not writable", bin, f.hdr.Uid, f.hdr.Mode)
				}
				if err := static(f.data); err != nil {
					t.Errorf("/usr/local/bin/%s: %v", bin, err)
				}
			}
			runVersion(t, svc, files["usr/local/bin/"+svc].data, cf.Config.Labels["org.opencontainers.image.version"])
			runProbe(t, files["usr/local/bin/probe"].data)
		})
	}
}

type tarFile struct {
	hdr  *tar.Header
	data []byte
}

func extract(t *testing.T, rc io.ReadCloser) map[string]*tarFile {
	t.Helper()
	defer rc.Close()
	out := map[string]*tarFile{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		out[strings.TrimSuffix(strings.TrimPrefix(h.Name, "/"), "/")] = &tarFile{hdr: h, data: b}
	}
}

// static reports an error when the ELF binary needs a dynamic loader or
// shared libraries (a scratch image has neither).
func static(b []byte) error {
	f, err := elf.NewFile(bytes.NewReader(b))
	if err != nil {
		return err
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return errors.New("dynamically linked (has an ELF interpreter): build with CGO_ENABLED=0")
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		return errors.New("needs shared libraries " + strings.Join(libs, ", "))
	}
	return nil
}

func writeExec(t *testing.T, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, b, 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// runVersion runs the image's binary with --version and an empty
// environment: it must exit 0 at once (before reading any configuration,
// never starting to serve) and print "<service> <version> (...)", the
// version stamped at build time (-X main.version) matching the image label.
func runVersion(t *testing.T, svc string, bin []byte, version string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, writeExec(t, svc, bin), "--version")
	cmd.Env = []string{}
	cmd.Dir = t.TempDir()
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("%s --version did not exit within 30s (it must not start serving)", svc)
	}
	first, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	if err != nil {
		t.Fatalf("%s --version: %v: %s", svc, err, first)
	}
	if want := svc + " " + version + " ("; !strings.HasPrefix(first, want) {
		t.Errorf("%s --version printed %q; want it to start with %q (the image's version label)", svc, first, want)
	}
	t.Logf("%s --version: %s", svc, first)
}

// runProbe: the healthcheck binary runs in the image and refuses a dead URL.
func runProbe(t *testing.T, bin []byte) {
	t.Helper()
	p := writeExec(t, "probe", bin)
	if err := exec.Command(p, "http://127.0.0.1:1/readyz").Run(); err == nil {
		t.Error("probe of a closed port succeeded")
	}
	var ee *exec.ExitError
	if err := exec.Command(p).Run(); !errors.As(err, &ee) || ee.ExitCode() != 2 {
		t.Errorf("probe without a URL: %v, want exit status 2 (usage)", err)
	}
}
