// Command imagebuild writes an OCI image tarball for each service named,
// without a container engine (see package image). `make images` runs it after
// building the static binaries:
//
//	imagebuild -bin bin/images/bin -out bin/images -tag dev ingest delivery configapi observability eventstream
//
// Each image is written to <out>/<service>.tar, tagged <repo>/<service>:<tag>.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/eventstream/eventstream/deploy/image"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "imagebuild:", err)
		os.Exit(1)
	}
}

func run() error {
	bin := flag.String("bin", "bin/images/bin", "directory holding the static binaries (and probe)")
	out := flag.String("out", "bin/images", "directory for the <service>.tar files")
	repo := flag.String("repo", "eventstream", "image repository prefix")
	tag := flag.String("tag", "dev", "image tag, also the version label")
	ca := flag.String("ca", "/etc/ssl/certs/ca-certificates.crt", "PEM CA bundle to ship (Debian ca-certificates)")
	flag.Parse()
	if flag.NArg() == 0 {
		return fmt.Errorf("name at least one service")
	}
	// SOURCE_DATE_EPOCH (reproducible-builds.org) fixes the timestamps.
	created := time.Unix(0, 0).UTC()
	if v := os.Getenv("SOURCE_DATE_EPOCH"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return fmt.Errorf("SOURCE_DATE_EPOCH: %w", err)
		}
		created = time.Unix(n, 0).UTC()
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", *out, err)
	}
	for _, svc := range flag.Args() {
		img, err := image.Build(image.Spec{
			Service:  svc,
			Binary:   filepath.Join(*bin, svc),
			Probe:    filepath.Join(*bin, "probe"),
			CABundle: *ca,
			Version:  *tag,
			Created:  created,
		})
		if err != nil {
			return err
		}
		path := filepath.Join(*out, svc+".tar")
		if err := image.WriteTarball(img, *repo+"/"+svc+":"+*tag, path); err != nil {
			return err
		}
		d, _ := img.Digest()
		fmt.Printf("%s\t%s\t%s\n", path, *repo+"/"+svc+":"+*tag, d)
	}
	return nil
}
