package rest_test

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/coder/websocket"
	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/livehub/livehub/rest"
)

const gzipMin = 256

// bigJSON is a JSON value well above gzipMin.
func bigJSON() gin.H {
	items := make([]gin.H, 40)
	for i := range items {
		items[i] = gin.H{"id": i, "name": "flash sale item", "price": 125000, "currency": "IDR"}
	}
	return gin.H{"items": items}
}

// compressServer serves a gin engine behind rest.Gzip on loopback. release
// unblocks /sse's second event.
func compressServer(t *testing.T) (url string, release chan struct{}) {
	t.Helper()
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.Use(rest.Gzip(gzipMin), gin.Recovery())
	r.GET("/json/big", func(c *gin.Context) { c.JSON(http.StatusOK, bigJSON()) })
	r.GET("/json/small", func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"status": "ok"}) })
	r.GET("/json/created", func(c *gin.Context) { c.JSON(http.StatusCreated, bigJSON()) })
	r.GET("/png", func(c *gin.Context) {
		c.Data(http.StatusOK, "image/png", bytes.Repeat([]byte("P"), 4*gzipMin))
	})
	r.GET("/precompressed", func(c *gin.Context) {
		var b bytes.Buffer
		zw := gzip.NewWriter(&b)
		_, _ = zw.Write(bytes.Repeat([]byte("already "), 200))
		_ = zw.Close()
		c.Header("Content-Encoding", "gzip")
		c.Data(http.StatusOK, "text/plain", b.Bytes())
	})
	r.GET("/nocontent", func(c *gin.Context) { c.Status(http.StatusNoContent) })
	r.GET("/chunks", func(c *gin.Context) {
		// Written in pieces, each under the threshold, with a flush after
		// the threshold was passed.
		c.Header("Content-Type", "text/plain; charset=utf-8")
		for i := range 20 {
			_, _ = c.Writer.WriteString(strings.Repeat(string(rune('a'+i)), 30))
			if i == 12 {
				c.Writer.Flush()
			}
		}
	})
	r.GET("/sniffed", func(c *gin.Context) {
		_, _ = c.Writer.Write([]byte("<!DOCTYPE html><html><body>" + strings.Repeat("<p>hi</p>", 100) + "</body></html>"))
	})
	release = make(chan struct{})
	r.GET("/sse", func(c *gin.Context) {
		c.Header("Content-Type", "text/event-stream")
		_, _ = c.Writer.WriteString("data: " + strings.Repeat("x", 2*gzipMin) + "\n\n")
		c.Writer.Flush()
		select {
		case <-release:
		case <-c.Request.Context().Done():
			return
		}
		_, _ = c.Writer.WriteString("data: second\n\n")
	})
	r.GET("/ws", func(c *gin.Context) {
		ws, err := websocket.Accept(c.Writer, c.Request, nil)
		if err != nil {
			return
		}
		defer ws.CloseNow()
		ctx := c.Request.Context()
		typ, msg, err := ws.Read(ctx)
		if err != nil {
			return
		}
		_ = ws.Write(ctx, typ, bytes.Repeat(msg, 100))
		_ = ws.Close(websocket.StatusNormalClosure, "")
	})
	r.GET("/panic", func(c *gin.Context) { panic("boom") })
	static := fstest.MapFS{
		"app.js":   {Data: []byte("function hello() {\n" + strings.Repeat("  console.log('live shopping');\n", 40) + "}\n")},
		"tiny.css": {Data: []byte("body{margin:0}")},
		"logo.png": {Data: bytes.Repeat([]byte{0x89, 'P', 'N', 'G'}, 300)},
	}
	fileServer := http.FileServer(http.FS(static))
	r.NoRoute(func(c *gin.Context) {
		c.Status(http.StatusOK)
		fileServer.ServeHTTP(c.Writer, c.Request)
	})
	srv := httptest.NewServer(r)
	t.Cleanup(func() {
		select {
		case <-release:
		default:
			close(release)
		}
		srv.Close()
	})
	return srv.URL, release
}

// rawClient neither asks for nor decodes compression by itself, so the test
// sees the bytes and headers the server sent.
func rawClient(t *testing.T) *http.Client {
	tr := &http.Transport{DisableCompression: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

type fetched struct {
	resp *http.Response
	raw  []byte // as sent
	body []byte // decoded
}

func fetch(t *testing.T, c *http.Client, method, url, acceptEncoding string, hdr ...string) fetched {
	t.Helper()
	req, err := http.NewRequestWithContext(ctxT(t), method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if acceptEncoding != "" {
		req.Header.Set("Accept-Encoding", acceptEncoding)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	f := fetched{resp: resp, raw: raw, body: raw}
	if resp.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			t.Fatalf("%s: Content-Encoding gzip but body is not gzip: %v", url, err)
		}
		if f.body, err = io.ReadAll(zr); err != nil {
			t.Fatalf("%s: gzip body: %v", url, err)
		}
	}
	return f
}

func varies(h http.Header) bool {
	for _, v := range h.Values("Vary") {
		if strings.Contains(strings.ToLower(v), "accept-encoding") {
			return true
		}
	}
	return false
}

func TestGzip_CompressesLargeBodiesForClientsThatAcceptIt(t *testing.T) {
	url, _ := compressServer(t)
	c := rawClient(t)
	want, _ := json.Marshal(bigJSON())

	for _, path := range []string{"/json/big", "/json/created"} {
		f := fetch(t, c, http.MethodGet, url+path, "br;q=1.0, gzip;q=0.8")
		if got := f.resp.Header.Get("Content-Encoding"); got != "gzip" {
			t.Fatalf("%s: Content-Encoding %q, want gzip", path, got)
		}
		if !varies(f.resp.Header) {
			t.Fatalf("%s: Vary %q lacks Accept-Encoding", path, f.resp.Header.Values("Vary"))
		}
		if !bytes.Equal(f.body, want) {
			t.Fatalf("%s: decoded body differs:\n got %.80s\nwant %.80s", path, f.body, want)
		}
		if len(f.raw) >= len(want) {
			t.Fatalf("%s: %d bytes sent for %d of JSON; not smaller", path, len(f.raw), len(want))
		}
		if ct := f.resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			t.Fatalf("%s: Content-Type %q", path, ct)
		}
	}
	if f := fetch(t, c, http.MethodGet, url+"/json/created", "gzip"); f.resp.StatusCode != http.StatusCreated {
		t.Fatalf("status %d, want 201 kept", f.resp.StatusCode)
	}
}

func TestGzip_LeavesAloneWhatShouldNotBeCompressed(t *testing.T) {
	url, _ := compressServer(t)
	c := rawClient(t)
	want, _ := json.Marshal(bigJSON())

	tests := []struct {
		name, path, accept string
		hdr                []string
		vary               bool
	}{
		{"no Accept-Encoding", "/json/big", "", nil, true},
		{"gzip refused with q=0", "/json/big", "gzip;q=0, deflate", nil, true},
		{"only br offered", "/json/big", "br", nil, true},
		{"small body", "/json/small", "gzip", nil, true},
		{"compressed media type", "/png", "gzip", nil, false},
		{"already encoded", "/precompressed", "gzip", nil, false},
		{"no content", "/nocontent", "gzip", nil, false},
		{"small static file", "/tiny.css", "gzip", nil, true},
		{"static image", "/logo.png", "gzip", nil, false},
		{"range request", "/app.js", "gzip", []string{"Range", "bytes=0-9"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := fetch(t, c, http.MethodGet, url+tt.path, tt.accept, tt.hdr...)
			enc := f.resp.Header.Get("Content-Encoding")
			if tt.path == "/precompressed" {
				if enc != "gzip" || !bytes.Equal(f.body, bytes.Repeat([]byte("already "), 200)) {
					t.Fatalf("pre-compressed body re-encoded or altered: encoding %q, %.40q", enc, f.body)
				}
				return
			}
			if enc != "" {
				t.Fatalf("Content-Encoding %q, want none", enc)
			}
			if tt.vary && !varies(f.resp.Header) {
				t.Fatalf("Vary %q lacks Accept-Encoding", f.resp.Header.Values("Vary"))
			}
			if tt.path == "/json/big" && !bytes.Equal(f.body, want) {
				t.Fatalf("body altered: %.80s", f.body)
			}
		})
	}
	// The no-content response kept its status.
	if f := fetch(t, c, http.MethodGet, url+"/nocontent", "gzip"); f.resp.StatusCode != http.StatusNoContent || len(f.raw) != 0 {
		t.Fatalf("/nocontent: %d with %d bytes", f.resp.StatusCode, len(f.raw))
	}
	// The range request got its range.
	if f := fetch(t, c, http.MethodGet, url+"/app.js", "gzip", "Range", "bytes=0-9"); f.resp.StatusCode != http.StatusPartialContent || string(f.raw) != "function h" {
		t.Fatalf("range: %d %q", f.resp.StatusCode, f.raw)
	}
}

func TestGzip_StaticFilesAboveTheThreshold(t *testing.T) {
	url, _ := compressServer(t)
	c := rawClient(t)
	plain := fetch(t, c, http.MethodGet, url+"/app.js", "")
	zipped := fetch(t, c, http.MethodGet, url+"/app.js", "gzip")
	if plain.resp.Header.Get("Content-Encoding") != "" || len(plain.body) < gzipMin {
		t.Fatalf("plain fetch: encoding %q, %d bytes", plain.resp.Header.Get("Content-Encoding"), len(plain.body))
	}
	if zipped.resp.Header.Get("Content-Encoding") != "gzip" {
		t.Fatalf("app.js not compressed: headers %v", zipped.resp.Header)
	}
	if !bytes.Equal(zipped.body, plain.body) {
		t.Fatal("decoded app.js differs from the plain one")
	}
	if cl := zipped.resp.Header.Get("Content-Length"); cl != "" && cl != strconv.Itoa(len(zipped.raw)) {
		t.Fatalf("Content-Length %s for %d bytes sent: the uncompressed length leaked", cl, len(zipped.raw))
	}
	if ct := zipped.resp.Header.Get("Content-Type"); !strings.Contains(ct, "javascript") {
		t.Fatalf("Content-Type %q", ct)
	}
	if zipped.resp.Header.Get("Accept-Ranges") != "" {
		t.Fatal("a compressed response advertises byte ranges of the compressed bytes")
	}
	// HEAD gets no body and no encoding, as net/http would send it.
	if h := fetch(t, c, http.MethodHead, url+"/app.js", "gzip"); h.resp.StatusCode != http.StatusOK || len(h.raw) != 0 {
		t.Fatalf("HEAD: %d with %d bytes", h.resp.StatusCode, len(h.raw))
	}
}

func TestGzip_WritesInPiecesAndFlushes(t *testing.T) {
	url, _ := compressServer(t)
	c := rawClient(t)
	f := fetch(t, c, http.MethodGet, url+"/chunks", "gzip")
	var want strings.Builder
	for i := range 20 {
		want.WriteString(strings.Repeat(string(rune('a'+i)), 30))
	}
	if f.resp.Header.Get("Content-Encoding") != "gzip" || string(f.body) != want.String() {
		t.Fatalf("chunks: encoding %q, body %.60q", f.resp.Header.Get("Content-Encoding"), f.body)
	}
	// Without a Content-Type, the one net/http would sniff is kept.
	s := fetch(t, c, http.MethodGet, url+"/sniffed", "gzip")
	if s.resp.Header.Get("Content-Encoding") != "gzip" || !strings.HasPrefix(s.resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("sniffed: encoding %q, type %q", s.resp.Header.Get("Content-Encoding"), s.resp.Header.Get("Content-Type"))
	}
}

func TestGzip_EventStreamIsNotHeldBack(t *testing.T) {
	url, release := compressServer(t)
	c := rawClient(t)
	req, _ := http.NewRequestWithContext(ctxT(t), http.MethodGet, url+"/sse", nil)
	req.Header.Set("Accept-Encoding", "gzip")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if enc := resp.Header.Get("Content-Encoding"); enc != "" {
		t.Fatalf("event stream encoded %q", enc)
	}
	// The first event arrives while the handler still waits: nothing holds it.
	br := bufio.NewReader(resp.Body)
	line, err := br.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "data: xxx") {
		t.Fatalf("first event: %q, %v", line, err)
	}
	close(release)
	rest, _ := io.ReadAll(br)
	if !strings.Contains(string(rest), "data: second") {
		t.Fatalf("second event missing: %q", rest)
	}
}

func TestGzip_WebSocketUpgradePassesThrough(t *testing.T) {
	url, _ := compressServer(t)
	ctx := ctxT(t)
	ws, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(url, "http")+"/ws", &websocket.DialOptions{
		HTTPHeader: http.Header{"Accept-Encoding": {"gzip"}},
	})
	if err != nil {
		t.Fatalf("dial through the middleware: %v", err)
	}
	defer ws.CloseNow()
	if resp.Header.Get("Content-Encoding") != "" || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade response %d, Content-Encoding %q", resp.StatusCode, resp.Header.Get("Content-Encoding"))
	}
	if err := ws.Write(ctx, websocket.MessageText, []byte("hello ")); err != nil {
		t.Fatal(err)
	}
	_, msg, err := ws.Read(ctx)
	if err != nil || string(msg) != strings.Repeat("hello ", 100) {
		t.Fatalf("echo: %.40q, %v", msg, err)
	}
}

func TestGzip_PanicStillAnswers500(t *testing.T) {
	url, _ := compressServer(t)
	f := fetch(t, rawClient(t), http.MethodGet, url+"/panic", "gzip")
	if f.resp.StatusCode != http.StatusInternalServerError {
		t.Fatalf("status %d, want 500", f.resp.StatusCode)
	}
}

func TestGzip_ZeroThresholdDisables(t *testing.T) {
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.Use(rest.Gzip(0))
	r.GET("/", func(c *gin.Context) { c.JSON(http.StatusOK, bigJSON()) })
	srv := httptest.NewServer(r)
	defer srv.Close()
	f := fetch(t, rawClient(t), http.MethodGet, srv.URL+"/", "gzip")
	if f.resp.Header.Get("Content-Encoding") != "" || varies(f.resp.Header) {
		t.Fatalf("threshold 0 still compresses: %v", f.resp.Header)
	}
}

// Through rest.New: the REST API and the web pages are compressed, and
// /metrics, which compresses by itself, is not compressed twice.
func TestNew_GzipMinBytesWiresCompression(t *testing.T) {
	reg := prometheus.NewRegistry()
	node := newNode(t, reg)
	page := "<!doctype html><html><body>" + strings.Repeat("<p>live</p>", 200) + "</body></html>"
	h := rest.New(rest.Options{
		Node: node, APIKey: testAPIKey, Gatherer: reg, Logger: quietLogger(), GzipMinBytes: gzipMin,
		Static: http.FileServer(http.FS(fstest.MapFS{"index.html": {Data: []byte(page)}})),
	})
	srv := httptest.NewServer(h)
	defer srv.Close()
	c := rawClient(t)

	m := fetch(t, c, http.MethodGet, srv.URL+"/metrics", "gzip")
	if m.resp.Header.Get("Content-Encoding") != "gzip" || !strings.Contains(string(m.body), "livehub_hub_connections") {
		t.Fatalf("/metrics: encoding %q, %.80q", m.resp.Header.Get("Content-Encoding"), m.body)
	}
	p := fetch(t, c, http.MethodGet, srv.URL+"/", "gzip")
	if p.resp.Header.Get("Content-Encoding") != "gzip" || string(p.body) != page {
		t.Fatalf("web page: encoding %q, %d bytes decoded", p.resp.Header.Get("Content-Encoding"), len(p.body))
	}
	if s := fetch(t, c, http.MethodGet, srv.URL+"/healthz", "gzip"); s.resp.Header.Get("Content-Encoding") != "" || string(s.body) != `{"status":"ok"}` {
		t.Fatalf("/healthz: encoding %q, %q", s.resp.Header.Get("Content-Encoding"), s.body)
	}
}
