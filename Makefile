# LiveHub. `make run` starts a node on the memory engine; `make test` runs every test.
GO      ?= go
SDK_DIR := internal/e2e/sdk
BROWSER_DIR := internal/e2e/browser
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)

.PHONY: run build test test-short deps vet fuzz bench clean

run:
	$(GO) run ./cmd/livehub -dev

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/livehub ./cmd/livehub

# Node packages of the SDK interop test (the official centrifuge client)
# and of the browser test (playwright-core driving Debian's chromium).
deps: $(SDK_DIR)/node_modules/.installed $(BROWSER_DIR)/node_modules/.installed

$(SDK_DIR)/node_modules/.installed: $(SDK_DIR)/package-lock.json
	npm ci --prefix $(SDK_DIR) --no-audit --no-fund
	touch $@

$(BROWSER_DIR)/node_modules/.installed: $(BROWSER_DIR)/package-lock.json
	npm ci --prefix $(BROWSER_DIR) --no-audit --no-fund
	touch $@

vet:
	$(GO) vet ./...

test: deps vet
	$(GO) test -race -count=1 -timeout 30m ./...
	$(MAKE) fuzz FUZZTIME=20000x

test-short:
	$(GO) test -short -count=1 ./...

# Each fuzz target for a bounded time or number of runs; `make test` runs
# each 20,000 times. A count, unlike a duration, cannot trip Go 1.26's fuzz
# coordinator, which can report "context deadline exceeded" as a failure
# when the duration ends while a starved worker is mid-run (golang/go#75804).
FUZZTIME ?= 20s
FUZZ_TARGETS := \
	./hub:FuzzHandleFrame \
	./hub/redisengine:FuzzDecodePublication \
	./internal/auth:FuzzVerify \
	./internal/auth:FuzzVerifySignedPayload \
	./internal/payment:FuzzParseNotification \
	./internal/room:FuzzParseChat \
	./rest:FuzzServerAPIDecode \
	./rest:FuzzDevicesRegister \
	./rest:FuzzV1Checkout \
	./internal/notify:FuzzEventEnvelope \
	./internal/fossil:FuzzApply \
	./internal/fossil:FuzzDeltaRoundTrip
fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; name=$${t##*:}; \
		echo "fuzz $$pkg $$name ($(FUZZTIME))"; \
		$(GO) test $$pkg -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME); \
	done

# The standard set of docs/benchmarks.md: load runs against servers the tool
# starts (a private redis-server for the Redis ones), the Go benchmarks and
# the bytes-per-event replay; rewrites the generated sections of that file.
bench:
	CGO_ENABLED=0 $(GO) build -o bin/livehub ./cmd/livehub
	$(GO) build -o bin/livehub-bench ./cmd/livehub-bench
	bin/livehub-bench suite -spawn-server bin/livehub -write docs/benchmarks.md

clean:
	rm -rf bin $(SDK_DIR)/node_modules $(BROWSER_DIR)/node_modules
