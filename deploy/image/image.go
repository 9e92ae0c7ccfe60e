// Package image assembles the Event Stream service images without a container
// engine: one layer holding a static binary, the probe healthcheck binary, the
// host's CA bundle and a passwd entry for the non-root user, on an empty base,
// written as a tarball that `docker load`, `podman load` and crane read.
//
// The layout matches the Dockerfiles in deploy/docker (scratch base, binaries
// in /usr/local/bin, user 65532:65532), so an image built either way behaves
// the same in the chart and in docker compose.
package image

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Paths inside every image.
const (
	BinDir   = "/usr/local/bin"
	CABundle = "/etc/ssl/certs/ca-certificates.crt"
	Probe    = BinDir + "/probe"
	// User is the numeric non-root user and group (distroless' "nonroot"),
	// numeric so Kubernetes' runAsNonRoot can verify it without /etc/passwd.
	User = "65532:65532"
)

// Ports are the HTTP ports the services listen on by default (their *_ADDR
// variables); the image declares them for documentation only.
var Ports = map[string]int{
	"configapi":     8081,
	"ingest":        8082,
	"delivery":      8083,
	"observability": 8084,
}

// Spec describes one service image.
type Spec struct {
	Service  string // binary and image name: ingest, delivery, configapi, observability, eventstream
	Binary   string // host path of the static binary
	Probe    string // host path of the static probe binary ("" leaves it out)
	CABundle string // host path of the PEM CA bundle (Debian's ca-certificates)
	Version  string // org.opencontainers.image.version label
	// Created stamps the files and the config; a fixed time keeps the image
	// digest reproducible (SOURCE_DATE_EPOCH in the Makefile).
	Created time.Time
}

// Build returns the image for s.
func Build(s Spec) (v1.Image, error) {
	layerBytes, err := layerTar(s)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerBytes)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, fmt.Errorf("making layer: %w", err)
	}
	base := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	base = mutate.ConfigMediaType(base, types.OCIConfigJSON)
	img, err := mutate.AppendLayers(base, layer)
	if err != nil {
		return nil, fmt.Errorf("appending layer: %w", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = runtime.GOOS, runtime.GOARCH
	cf.Created = v1.Time{Time: s.Created}
	cf.Config.User = User
	cf.Config.Entrypoint = []string{BinDir + "/" + s.Service}
	cf.Config.WorkingDir = "/"
	cf.Config.Env = []string{"PATH=" + BinDir, "SSL_CERT_FILE=" + CABundle}
	cf.Config.Labels = map[string]string{
		"org.opencontainers.image.title":   "eventstream-" + s.Service,
		"org.opencontainers.image.version": s.Version,
		"org.opencontainers.image.source":  "https://github.com/eventstream/eventstream",
	}
	if p, ok := Ports[s.Service]; ok {
		cf.Config.ExposedPorts = map[string]struct{}{strconv.Itoa(p) + "/tcp": {}}
	}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, fmt.Errorf("setting config: %w", err)
	}
	return img, nil
}

// WriteTarball writes img to path as a `docker save` style tarball tagged ref
// (e.g. eventstream/ingest:dev).
func WriteTarball(img v1.Image, ref, path string) error {
	tag, err := name.NewTag(ref)
	if err != nil {
		return fmt.Errorf("parsing tag %q: %w", ref, err)
	}
	if err := tarball.WriteToFile(path, tag, img); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// passwd names the non-root user for tools that look it up (and root, which
// glibc-less tools expect as the first line).
const passwd = "root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n"
const group = "root:x:0:\nnonroot:x:65532:\n"

// layerTar is the single layer: root-owned, read-only files (the process user
// cannot change its own binary), /tmp world-writable with the sticky bit for
// the rare library that wants a temp dir when the root filesystem is writable.
func layerTar(s Spec) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dir := func(p string, mode int64) error {
		return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: p, Mode: mode, ModTime: s.Created, Format: tar.FormatPAX})
	}
	file := func(p string, mode int64, b []byte) error {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: p, Mode: mode, Size: int64(len(b)), ModTime: s.Created, Format: tar.FormatPAX}); err != nil {
			return err
		}
		_, err := tw.Write(b)
		return err
	}
	hostFile := func(p string, mode int64, host string) error {
		b, err := os.ReadFile(host)
		if err != nil {
			return fmt.Errorf("reading %s for %s: %w", host, p, err)
		}
		return file(p, mode, b)
	}
	steps := []func() error{
		func() error { return dir("etc/", 0o755) },
		func() error { return file("etc/passwd", 0o444, []byte(passwd)) },
		func() error { return file("etc/group", 0o444, []byte(group)) },
		func() error { return dir("etc/ssl/", 0o755) },
		func() error { return dir("etc/ssl/certs/", 0o755) },
		func() error { return hostFile(CABundle[1:], 0o444, s.CABundle) },
		func() error { return dir("home/", 0o755) },
		func() error {
			return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: "home/nonroot/", Mode: 0o700, Uid: 65532, Gid: 65532, ModTime: s.Created, Format: tar.FormatPAX})
		},
		func() error { return dir("tmp/", 0o1777) },
		func() error { return dir("usr/", 0o755) },
		func() error { return dir("usr/local/", 0o755) },
		func() error { return dir("usr/local/bin/", 0o755) },
		func() error { return hostFile(BinDir[1:]+"/"+s.Service, 0o555, s.Binary) },
	}
	if s.Probe != "" {
		steps = append(steps, func() error { return hostFile(Probe[1:], 0o555, s.Probe) })
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return nil, fmt.Errorf("writing layer of %s: %w", s.Service, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("writing layer of %s: %w", s.Service, err)
	}
	return buf.Bytes(), nil
}
