# lakehoused — the two commands a new user needs are `make run` and `make test`.
GO       ?= go
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -X main.version=$(VERSION)
PKGS     := ./...

.PHONY: build run test test-short bench lint clean tools

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/lakehoused ./cmd/lakehoused

# Starts one node: warehouse in ./data, MySQL on 127.0.0.1:3307, HTTP on 127.0.0.1:8307.
run: build
	./bin/lakehoused serve

# Every test, including the ones that start the daemon and talk to it over the MySQL protocol.
# The commit path's concurrency also runs under the race detector: the log, storage,
# compaction and connector packages whole, and the system tests that race clients against one another
# (the maintenance soak shortened to 10 s), one server
# at a time (go-mysql-server keeps process-wide state that parallel in-process servers
# would race on).
RACE_TESTS := TestRacingDuplicateKeys|TestConcurrentAppendsAllCommit|TestConflictingUpdate|TestGroupCommit|TestUpdateCommitsOverConcurrentInserts|TestMaintenanceUnderLoad|TestCopySpill|TestCopyProgress

# Tools the tests run: versitygw, a real S3 gateway (the S3 storage and warehouse tests), and
# Debian's chromium (the scoreboard's browser test).
VERSITYGW_VERSION := v1.8.0
tools:
	@command -v versitygw >/dev/null 2>&1 || test -x "$$($(GO) env GOPATH)/bin/versitygw" || \
	  (echo "installing versitygw $(VERSITYGW_VERSION) (go install, a minute or two)"; \
	   $(GO) install github.com/versity/versitygw/cmd/versitygw@$(VERSITYGW_VERSION))
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	  (echo "installing Debian's chromium for the browser tests (apt-get, a few minutes)"; \
	   SUDO=; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	   DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q chromium || \
	   ($$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q chromium))

test: tools
	$(GO) vet $(PKGS)
	$(GO) test -count=1 -timeout 20m $(PKGS)
	$(GO) test -race -count=1 -timeout 10m ./txlog/ ./storage/ ./compaction/ ./connector/ ./cluster/
	LAKEHOUSED_SOAK=10s $(GO) test -race -count=1 -timeout 10m -parallel 1 -run '$(RACE_TESTS)' ./system_test/
	cd compat && $(GO) vet ./... && $(GO) test -count=1 -timeout 10m ./...

test-short: tools
	$(GO) test -short -count=1 $(PKGS)

# Benchmarks print the figures the issues ask for (see bench/README.md). LAKEHOUSED_BENCH_ROWS
# (default 10000000) sizes the bulk-load table; -v streams progress and the figure lines.
bench:
	$(GO) test -run '^$$' -bench . -benchtime 1x -timeout 60m -v ./bench/...

lint:
	@test -z "$$(gofmt -l .)" || (echo "gofmt would change:"; gofmt -l .; exit 1)
	$(GO) vet $(PKGS)
	@if command -v staticcheck >/dev/null 2>&1; then staticcheck $(PKGS); \
	  else echo "staticcheck not installed: go install honnef.co/go/tools/cmd/staticcheck@latest"; fi

clean:
	rm -rf bin
