// Package s3test runs a real S3 gateway for tests: versitygw v1.8.0 over a temp directory on
// a free loopback port, with one bucket. `make tools` (which `make test` runs first) installs
// the gateway with go install; a test that needs it and does not find it fails, saying how
// to install it, rather than skipping.
package s3test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// Gateway is a running versitygw with one bucket.
type Gateway struct {
	Endpoint  string // http://127.0.0.1:PORT
	AccessKey string
	SecretKey string
	Bucket    string
}

// Binary finds the versitygw executable: $VERSITYGW, then PATH, then $GOBIN / $GOPATH/bin.
func Binary() (string, error) {
	if p := os.Getenv("VERSITYGW"); p != "" {
		return p, nil
	}
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p, nil
	}
	var dirs []string
	if out, err := exec.Command("go", "env", "GOBIN", "GOPATH").Output(); err == nil {
		f := strings.Split(strings.TrimSpace(string(out)), "\n")
		if len(f) > 0 && f[0] != "" {
			dirs = append(dirs, f[0])
		}
		if len(f) > 1 {
			for _, p := range filepath.SplitList(f[1]) {
				dirs = append(dirs, filepath.Join(p, "bin"))
			}
		}
	}
	for _, d := range dirs {
		p := filepath.Join(d, "versitygw")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("versitygw not found; install it with `make tools` (go install github.com/versity/versitygw/cmd/versitygw@v1.8.0)")
}

// Start runs a gateway for the test and stops it at cleanup.
func Start(t testing.TB) *Gateway {
	t.Helper()
	bin, err := Binary()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	g := &Gateway{Endpoint: "http://" + addr, AccessKey: "lakehoused-test", SecretKey: "lakehoused-test-secret", Bucket: "lake"}
	cmd := exec.Command(bin, "--port", addr, "--access", g.AccessKey, "--secret", g.SecretKey, "posix", dir)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start versitygw: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_, _ = cmd.Process.Wait()
	})
	client, err := minio.New(addr, &minio.Options{Creds: credentials.NewStaticV4(g.AccessKey, g.SecretKey, ""), BucketLookup: minio.BucketLookupPath})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err = client.MakeBucket(ctx, g.Bucket, minio.MakeBucketOptions{})
		cancel()
		if err == nil {
			return g
		}
		if time.Now().After(deadline) {
			t.Fatalf("versitygw on %s did not come up: %v\n%s", addr, err, out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}
