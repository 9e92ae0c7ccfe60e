package testenv

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestFindMinIO(t *testing.T) {
	dir := t.TempDir()
	exe := filepath.Join(dir, "minio")
	if err := os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	plain := filepath.Join(dir, "not-executable")
	if err := os.WriteFile(plain, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	empty := t.TempDir()
	cases := []struct {
		name, minioBin, path, gobin string
		want, wantErr               string
	}{
		{name: "MINIO_BIN", minioBin: exe, path: empty, want: exe},
		{name: "MINIO_BIN not executable", minioBin: plain, path: empty, wantErr: "not an executable"},
		{name: "on PATH", path: dir, want: exe},
		{name: "in GOBIN", path: empty, gobin: dir, want: exe},
		{name: "nowhere", path: empty, gobin: empty, wantErr: "no minio binary"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("MINIO_BIN", tc.minioBin)
			// go itself must stay reachable for `go env`.
			goDir := filepath.Dir(mustLookGo(t))
			t.Setenv("PATH", tc.path+string(os.PathListSeparator)+goDir)
			t.Setenv("GOBIN", tc.gobin)
			t.Setenv("GOPATH", empty)
			got, err := FindMinIO()
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("FindMinIO() = %q, %v; want error %q", got, err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("FindMinIO() = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func mustLookGo(t *testing.T) string {
	t.Helper()
	for _, d := range filepath.SplitList(os.Getenv("PATH")) {
		if p := filepath.Join(d, "go"); isExecutable(p) {
			return p
		}
	}
	t.Fatal("go not on PATH")
	return ""
}
