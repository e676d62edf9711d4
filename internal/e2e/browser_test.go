package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/livehub/livehub/internal/auth"
)

// chromiumPath is Debian's Chromium; the browser test never downloads one.
const chromiumPath = "/usr/bin/chromium"

// browserTimeout bounds the server start and the whole browser script.
const browserTimeout = 3 * time.Minute

var browserSummaryRE = regexp.MustCompile(`(?m)^browser: (\d+) passed, (\d+) failed$`)

// shortTokenTTL is the life of the token whose refresh over the socket the
// browser script watches: long enough to connect, short enough to be
// refreshed while the rest of the story plays.
const shortTokenTTL = 30 * time.Second

// TestBrowserFlashSale drives the web pages (web/static) in headless Chromium
// through playwright-core: the index hands out demo tokens, a host pins a
// product and a message and launches a sale of 3 units, one viewer buys 2 in
// one order and another 1, the third sees it sold out after a cut socket,
// the host page shows the units and revenue and moderates the chat, and a
// courier's moves show on the buyer's tracking page. The play itself lives
// in browser/flow.mjs; screenshots go to internal/e2e/artifacts/ (git-ignored),
// or to the directory named by LIVEHUB_E2E_ARTIFACTS.
func TestBrowserFlashSale(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end browser test: skipped with -short")
	}
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Fatalf("Chromium is not installed at %s (%v).\n"+
			"Install it with `apt-get install -y chromium` (Debian), then run this test again.", chromiumPath, err)
	}
	root := moduleRoot(t)
	dir := filepath.Join(root, "internal", "e2e", "browser")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "playwright-core", "package.json")); err != nil {
		t.Fatalf("playwright-core is not installed (%v).\n"+
			"Run `npm ci --prefix internal/e2e/browser` from the repository root, then run this test again.", err)
	}
	nodeBin, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node is not on PATH (%v): this test needs Node.js 20 or newer", err)
	}
	artifacts := os.Getenv("LIVEHUB_E2E_ARTIFACTS")
	if artifacts == "" {
		artifacts = filepath.Join(root, "internal", "e2e", "artifacts")
	}
	if err := os.MkdirAll(artifacts, 0o755); err != nil {
		t.Fatal(err)
	}

	bin := buildServer(t, root)
	ctx, cancel := context.WithTimeout(context.Background(), browserTimeout)
	defer cancel()
	srv := startServer(ctx, t, bin, "LIVEHUB_DEV=true", "LIVEHUB_LOG_LEVEL=info")

	viewers := []string{
		mint(t, "buyer-ana", "Ana Wijaya", auth.RoleCustomer),
		mint(t, "buyer-budi", "Budi Santoso", auth.RoleCustomer),
		mint(t, "buyer-citra", "Citra Lestari", auth.RoleCustomer),
	}
	short, err := auth.Mint([]byte(jwtSecret), auth.Claims{Subject: "buyer-dewi", Name: "Dewi Short", Roles: []auth.Role{auth.RoleCustomer}}, shortTokenTTL)
	if err != nil {
		t.Fatal(err)
	}
	expired, err := auth.Mint([]byte(jwtSecret), auth.Claims{Subject: "buyer-eko", Name: "Eko Expired", Roles: []auth.Role{auth.RoleCustomer},
		ExpiresAt: time.Now().Add(-time.Minute)}, 0)
	if err != nil {
		t.Fatal(err)
	}
	script := exec.CommandContext(ctx, nodeBin, "flow.mjs")
	script.Dir = dir
	script.Env = append(os.Environ(),
		"LIVEHUB_HTTP=http://"+srv.addr,
		"HOST_TOKEN="+mint(t, "host-1", "Sari Host", auth.RoleHost),
		"VIEWER_TOKENS="+strings.Join(viewers, ","),
		"SHORT_TOKEN="+short,
		"EXPIRED_TOKEN="+expired,
		"ARTIFACTS_DIR="+artifacts,
		"CHROMIUM="+chromiumPath,
	)
	var out lockedBuffer
	script.Stdout = &out
	script.Stderr = &out
	script.WaitDelay = 5 * time.Second
	started := time.Now()
	runErr := script.Run()
	took := time.Since(started).Round(time.Millisecond)
	output := out.String()
	switch m := browserSummaryRE.FindStringSubmatch(output); {
	case runErr != nil:
		if ctx.Err() != nil {
			runErr = fmt.Errorf("%w (the run exceeded %s)", runErr, browserTimeout)
		}
		t.Errorf("browser script failed after %s: %v (screenshots in %s)\n--- script output ---\n%s--- server log (tail) ---\n%s",
			took, runErr, artifacts, output, srv.logTail(80))
	case m == nil || m[2] != "0" || m[1] == "0":
		t.Errorf("browser script exited 0 but its summary is missing or not clean:\n%s", output)
	default:
		t.Logf("browser script passed in %s (screenshots in %s):\n%s", took, artifacts, output)
	}

	srv.stop(t)
	if races := srv.races(); races != "" {
		t.Errorf("the server reported data races:\n%s", races)
	}
}
