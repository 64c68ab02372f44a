package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// S3Config says how to reach an S3-compatible object store. Zero values take the
// environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION, AWS_ENDPOINT_URL).
type S3Config struct {
	// Endpoint is the service URL, http://host:port for a self-hosted gateway. Default
	// AWS_ENDPOINT_URL, else https://s3.amazonaws.com.
	Endpoint string
	Region   string
	// AccessKey and SecretKey; default the AWS_* variables.
	AccessKey, SecretKey string
	// VirtualHost addresses buckets as bucket.host (AWS); default path-style (host/bucket),
	// which self-hosted gateways expect.
	VirtualHost bool
	// Timeout bounds each request; default 60 s. Failed requests (5xx, timeouts, resets)
	// are retried with backoff by the client, up to 10 times.
	Timeout time.Duration
}

func (c S3Config) withEnv() S3Config {
	if c.Endpoint == "" {
		c.Endpoint = os.Getenv("AWS_ENDPOINT_URL")
	}
	if c.Endpoint == "" {
		c.Endpoint = "https://s3.amazonaws.com"
	}
	if c.Region == "" {
		c.Region = os.Getenv("AWS_REGION")
	}
	if c.AccessKey == "" {
		c.AccessKey = os.Getenv("AWS_ACCESS_KEY_ID")
	}
	if c.SecretKey == "" {
		c.SecretKey = os.Getenv("AWS_SECRET_ACCESS_KEY")
	}
	if c.Timeout <= 0 {
		c.Timeout = 60 * time.Second
	}
	return c
}

// S3 is a Store over one bucket, rooted at a key prefix.
type S3 struct {
	client *minio.Client
	bucket string
	prefix string // "" or ending in "/"
	url    string
}

// NewS3 opens s3://bucket/prefix through cfg. It checks that the bucket exists, so a wrong
// endpoint, credentials or bucket name fail here with an error that says which.
func NewS3(ctx context.Context, cfg S3Config, bucket, prefix string) (*S3, error) {
	cfg = cfg.withEnv()
	u, err := url.Parse(cfg.Endpoint)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, fmt.Errorf("storage: S3 endpoint %q must be an http:// or https:// URL", cfg.Endpoint)
	}
	lookup := minio.BucketLookupPath
	if cfg.VirtualHost {
		lookup = minio.BucketLookupDNS
	}
	client, err := minio.New(u.Host, &minio.Options{
		Creds:        credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, ""),
		Secure:       u.Scheme == "https",
		Region:       cfg.Region,
		BucketLookup: lookup,
		Transport:    &http.Transport{Proxy: http.ProxyFromEnvironment, ResponseHeaderTimeout: cfg.Timeout, MaxIdleConnsPerHost: 64, IdleConnTimeout: 90 * time.Second},
	})
	if err != nil {
		return nil, fmt.Errorf("storage: S3 client for %s: %w", cfg.Endpoint, err)
	}
	prefix = strings.Trim(prefix, "/")
	if prefix != "" {
		if err := checkKey("open", prefix); err != nil {
			return nil, err
		}
		prefix += "/"
	}
	s := &S3{client: client, bucket: bucket, prefix: prefix, url: "s3://" + bucket + "/" + strings.TrimSuffix(prefix, "/")}
	cctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	ok, err := client.BucketExists(cctx, bucket)
	if err != nil {
		return nil, fmt.Errorf("storage: S3 bucket %s at %s: %w (check the endpoint and the credentials in AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY)", bucket, cfg.Endpoint, err)
	}
	if !ok {
		return nil, fmt.Errorf("storage: S3 bucket %s does not exist at %s; create it first", bucket, cfg.Endpoint)
	}
	return s, nil
}

func (s *S3) URL() string { return strings.TrimSuffix(s.url, "/") }

func (s *S3) key(op, k string) (string, error) {
	if err := checkKey(op, k); err != nil {
		return "", err
	}
	return s.prefix + k, nil
}

// s3Error maps the service's answers to the package's errors.
func (s *S3) s3Error(op, k string, err error) error {
	resp := minio.ToErrorResponse(err)
	switch {
	case resp.Code == "NoSuchKey" || resp.StatusCode == http.StatusNotFound && resp.Code != "NoSuchBucket":
		return fmt.Errorf("storage: %s %s/%s: %w", op, s.URL(), k, ErrNotExist)
	case resp.Code == "PreconditionFailed" || resp.StatusCode == http.StatusPreconditionFailed:
		return fmt.Errorf("storage: %s %s/%s: %w", op, s.URL(), k, ErrExist)
	}
	return fmt.Errorf("storage: %s %s/%s: %w", op, s.URL(), k, err)
}

func (s *S3) Get(ctx context.Context, k string) ([]byte, error) {
	key, err := s.key("get", k)
	if err != nil {
		return nil, err
	}
	obj, err := s.client.GetObject(ctx, s.bucket, key, minio.GetObjectOptions{})
	if err != nil {
		return nil, s.s3Error("get", k, err)
	}
	defer obj.Close()
	data, err := io.ReadAll(obj)
	if err != nil {
		return nil, s.s3Error("get", k, err)
	}
	return data, nil
}

func (s *S3) GetRange(ctx context.Context, k string, off, n int64) ([]byte, error) {
	key, err := s.key("get", k)
	if err != nil {
		return nil, err
	}
	if off < 0 || n < 0 {
		return nil, fmt.Errorf("storage: get %s/%s: invalid range %d+%d", s.URL(), k, off, n)
	}
	if n == 0 {
		return []byte{}, nil
	}
	var opts minio.GetObjectOptions
	if err := opts.SetRange(off, off+n-1); err != nil {
		return nil, err
	}
	obj, err := s.client.GetObject(ctx, s.bucket, key, opts)
	if err != nil {
		return nil, s.s3Error("get", k, err)
	}
	defer obj.Close()
	data, err := io.ReadAll(obj)
	if err != nil {
		if resp := minio.ToErrorResponse(err); resp.Code == "InvalidRange" {
			return []byte{}, nil // the range starts at or after the end: nothing there
		}
		return nil, s.s3Error("get", k, err)
	}
	return data, nil
}

func (s *S3) Open(ctx context.Context, k string) (ReaderAtCloser, int64, error) {
	return openByRanges(ctx, s, k)
}

func (s *S3) Put(ctx context.Context, k string, data []byte) error {
	key, err := s.key("put", k)
	if err != nil {
		return err
	}
	_, err = s.client.PutObject(ctx, s.bucket, key, bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{PartSize: 16 << 20})
	if err != nil {
		return s.s3Error("put", k, err)
	}
	return nil
}

// PutIfAbsent is a conditional PUT (If-None-Match: *): the store itself refuses a second
// writer, which is what makes concurrent Delta commits safe on S3.
func (s *S3) PutIfAbsent(ctx context.Context, k string, data []byte) error {
	key, err := s.key("put", k)
	if err != nil {
		return err
	}
	opts := minio.PutObjectOptions{}
	opts.SetMatchETagExcept("*")
	_, err = s.client.PutObject(ctx, s.bucket, key, bytes.NewReader(data), int64(len(data)), opts)
	if err != nil {
		err = s.s3Error("put", k, err)
		if resp := minio.ToErrorResponse(err); !errors.Is(err, ErrExist) && (resp.StatusCode == 0 || resp.StatusCode >= 500) {
			// No answer (a timeout, a reset, a cancelled request) or a server error: the
			// object may have been written. A commit must not be taken for failed then.
			return fmt.Errorf("%w: %w", ErrOutcomeUnknown, err)
		}
		return err
	}
	return nil
}

func (s *S3) List(ctx context.Context, prefix string) ([]ObjectInfo, error) {
	if err := checkPrefix(prefix); err != nil {
		return nil, err
	}
	var out []ObjectInfo
	for obj := range s.client.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: s.prefix + prefix, Recursive: true}) {
		if obj.Err != nil {
			return nil, s.s3Error("list", prefix, obj.Err)
		}
		k := strings.TrimPrefix(obj.Key, s.prefix)
		if strings.HasSuffix(k, "/") {
			continue // a folder marker some tools create
		}
		out = append(out, ObjectInfo{Key: k, Size: obj.Size, ModTime: obj.LastModified})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

func (s *S3) Delete(ctx context.Context, k string) error {
	key, err := s.key("delete", k)
	if err != nil {
		return err
	}
	if err := s.client.RemoveObject(ctx, s.bucket, key, minio.RemoveObjectOptions{}); err != nil {
		if errors.Is(s.s3Error("delete", k, err), ErrNotExist) {
			return nil
		}
		return s.s3Error("delete", k, err)
	}
	return nil
}

func (s *S3) Stat(ctx context.Context, k string) (ObjectInfo, error) {
	key, err := s.key("stat", k)
	if err != nil {
		return ObjectInfo{}, err
	}
	info, err := s.client.StatObject(ctx, s.bucket, key, minio.StatObjectOptions{})
	if err != nil {
		return ObjectInfo{}, s.s3Error("stat", k, err)
	}
	return ObjectInfo{Key: k, Size: info.Size, ModTime: info.LastModified}, nil
}
