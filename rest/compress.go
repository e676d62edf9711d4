package rest

import (
	"bufio"
	"compress/gzip"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/gin-gonic/gin"
)

// Gzip returns middleware that gzips responses of at least minBytes when the
// client accepts gzip (Accept-Encoding), for the text-like content types
// that gain from it (JSON, text, HTML, CSS, JavaScript, SVG, XML). Responses
// that carry their own Content-Encoding (the metrics endpoint compresses by
// itself), partial content, bodiless statuses, event streams, HEAD requests
// and WebSocket upgrades pass untouched. Compressible responses carry
// Vary: Accept-Encoding whether or not they were compressed. minBytes <= 0
// returns a middleware that does nothing.
func Gzip(minBytes int) gin.HandlerFunc {
	if minBytes <= 0 {
		return func(c *gin.Context) { c.Next() }
	}
	return func(c *gin.Context) {
		req := c.Request
		if req.Method == http.MethodHead || isUpgrade(req) {
			c.Next()
			return
		}
		w := &gzipWriter{
			ResponseWriter: c.Writer,
			min:            minBytes,
			accepts:        acceptsGzip(req.Header.Get("Accept-Encoding")) && req.Header.Get("Range") == "",
			status:         http.StatusOK,
		}
		c.Writer = w
		c.Next()
		w.finish()
		c.Writer = w.ResponseWriter
	}
}

// gzipLevel is the fastest: for API bodies of a few kilobytes its output is
// within a few percent of the higher levels', and its compressor resets
// without clearing the large hash tables they start every response with.
const gzipLevel = gzip.BestSpeed

var gzipPool = sync.Pool{New: func() any {
	w, _ := gzip.NewWriterLevel(nil, gzipLevel)
	return w
}}

// gzipWriter holds the start of a response until it knows whether the body
// reaches the threshold, then either compresses it or passes it through.
type gzipWriter struct {
	gin.ResponseWriter
	min     int
	accepts bool

	status  int
	decided bool         // the header went out; the mode below is fixed
	gz      *gzip.Writer // non-nil once compressing
	buf     []byte       // body held back while undecided
	size    int          // body bytes the handler wrote
}

func (w *gzipWriter) WriteHeader(code int) {
	if code > 0 && !w.decided {
		w.status = code
	}
}

func (w *gzipWriter) WriteHeaderNow() {
	if !w.decided {
		w.decide(false)
	}
}

func (w *gzipWriter) Status() int { return w.status }

func (w *gzipWriter) Size() int {
	if !w.decided && w.size == 0 {
		return -1
	}
	return w.size
}

func (w *gzipWriter) Written() bool { return w.decided || w.size > 0 }

func (w *gzipWriter) WriteString(s string) (int, error) { return w.Write([]byte(s)) }

func (w *gzipWriter) Write(p []byte) (int, error) {
	w.size += len(p)
	if !w.decided {
		w.buf = append(w.buf, p...)
		if len(w.buf) < w.min {
			return len(p), nil
		}
		held := w.buf
		w.buf = nil
		if err := w.decideAndWrite(held, true); err != nil {
			return 0, err
		}
		return len(p), nil
	}
	if w.gz != nil {
		return w.gz.Write(p)
	}
	return w.ResponseWriter.Write(p)
}

// Flush sends what is held: a body still under the threshold goes out
// uncompressed, and a compressed one is flushed through the gzip stream.
func (w *gzipWriter) Flush() {
	if !w.decided {
		held := w.buf
		w.buf = nil
		_ = w.decideAndWrite(held, len(held) >= w.min)
	}
	if w.gz != nil {
		_ = w.gz.Flush()
	}
	w.ResponseWriter.Flush()
}

func (w *gzipWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return w.ResponseWriter.Hijack()
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (w *gzipWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// finish ends the response after the handlers returned.
func (w *gzipWriter) finish() {
	if !w.decided {
		held := w.buf
		w.buf = nil
		if len(held) == 0 {
			// No body: leave the header to gin, which writes it after the
			// handlers unless they wrote nothing at all.
			w.ResponseWriter.WriteHeader(w.status)
			w.markCompressible()
			return
		}
		_ = w.decideAndWrite(held, false)
	}
	if w.gz != nil {
		_ = w.gz.Close()
		w.gz.Reset(nil)
		gzipPool.Put(w.gz)
		w.gz = nil
	}
}

func (w *gzipWriter) decideAndWrite(body []byte, large bool) error {
	h := w.Header()
	if h.Get("Content-Type") == "" && len(body) > 0 {
		// What net/http would sniff, before the body turns into gzip.
		h.Set("Content-Type", http.DetectContentType(body))
	}
	w.decide(large)
	if len(body) == 0 {
		return nil
	}
	var err error
	if w.gz != nil {
		_, err = w.gz.Write(body)
	} else {
		_, err = w.ResponseWriter.Write(body)
	}
	return err
}

// decide fixes the mode and writes the header: compressed when the body is
// large enough and the response may be compressed.
func (w *gzipWriter) decide(large bool) {
	w.decided = true
	compressible := w.markCompressible()
	if large && compressible && w.accepts {
		h := w.Header()
		h.Set("Content-Encoding", "gzip")
		h.Del("Content-Length")
		h.Del("Accept-Ranges")
		if etag := h.Get("ETag"); etag != "" && !strings.HasPrefix(etag, "W/") {
			h.Set("ETag", "W/"+etag)
		}
		w.gz = gzipPool.Get().(*gzip.Writer)
		w.gz.Reset(w.ResponseWriter)
	}
	w.ResponseWriter.WriteHeader(w.status)
	w.ResponseWriter.WriteHeaderNow()
}

// markCompressible reports whether the response as headed so far may be
// gzipped, and if so adds Vary: Accept-Encoding.
func (w *gzipWriter) markCompressible() bool {
	h := w.Header()
	if !bodyAllowed(w.status) || w.status == http.StatusPartialContent ||
		h.Get("Content-Encoding") != "" || h.Get("Content-Range") != "" ||
		!compressibleType(h.Get("Content-Type")) {
		return false
	}
	addVary(h, "Accept-Encoding")
	return true
}

func bodyAllowed(status int) bool {
	return status >= 200 && status != http.StatusNoContent && status != http.StatusNotModified
}

func compressibleType(ct string) bool {
	if ct == "" {
		return false
	}
	mt := strings.ToLower(strings.TrimSpace(strings.SplitN(ct, ";", 2)[0]))
	switch {
	case mt == "text/event-stream":
		return false // streamed; each event must leave at once
	case strings.HasPrefix(mt, "text/"):
		return true
	case strings.HasSuffix(mt, "+json"), strings.HasSuffix(mt, "+xml"):
		return true
	}
	switch mt {
	case "application/json", "application/javascript", "application/x-javascript",
		"application/ecmascript", "application/xml", "application/wasm",
		"application/manifest+json", "image/svg+xml", "image/x-icon":
		return true
	}
	return false
}

func addVary(h http.Header, v string) {
	for _, line := range h.Values("Vary") {
		for _, f := range strings.Split(line, ",") {
			if f = strings.TrimSpace(f); f == "*" || strings.EqualFold(f, v) {
				return
			}
		}
	}
	h.Add("Vary", v)
}

// acceptsGzip reads Accept-Encoding: gzip (or x-gzip, or *) with a nonzero
// quality.
func acceptsGzip(header string) bool {
	star := false
	for _, part := range strings.Split(header, ",") {
		name, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		name = strings.ToLower(strings.TrimSpace(name))
		q := 1.0
		for _, p := range strings.Split(params, ";") {
			k, v, ok := strings.Cut(strings.TrimSpace(p), "=")
			if ok && strings.EqualFold(strings.TrimSpace(k), "q") {
				if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
					q = f
				}
			}
		}
		switch name {
		case "gzip", "x-gzip":
			return q > 0
		case "*":
			star = q > 0
		}
	}
	return star
}

// isUpgrade reports a protocol upgrade (WebSocket): those responses are
// hijacked connections, never bodies to compress.
func isUpgrade(r *http.Request) bool {
	if r.Header.Get("Upgrade") != "" {
		return true
	}
	for _, v := range r.Header.Values("Connection") {
		for _, f := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(f), "upgrade") {
				return true
			}
		}
	}
	return false
}
