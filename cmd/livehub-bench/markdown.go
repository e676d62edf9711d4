package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The generated sections of a markdown file sit between two markers:
//
//	<!-- livehub-bench:begin NAME -->
//	...
//	<!-- livehub-bench:end NAME -->
//
// A run replaces what is between the markers of its section and leaves the
// rest of the file, the hand-written prose, as it was. A file without the
// section gets it appended.

func beginMarker(name string) string { return "<!-- livehub-bench:begin " + name + " -->" }
func endMarker(name string) string   { return "<!-- livehub-bench:end " + name + " -->" }

// replaceSection returns doc with section name's content replaced.
func replaceSection(doc, name, content string) (string, error) {
	begin, end := beginMarker(name), endMarker(name)
	content = strings.TrimRight(content, "\n") + "\n"
	i := strings.Index(doc, begin)
	j := strings.Index(doc, end)
	switch {
	case i < 0 && j < 0:
		if doc != "" && !strings.HasSuffix(doc, "\n") {
			doc += "\n"
		}
		if doc != "" {
			doc += "\n"
		}
		return doc + begin + "\n" + content + end + "\n", nil
	case i < 0 || j < 0 || j < i:
		return "", fmt.Errorf("section %q: markers missing or out of order", name)
	case strings.Count(doc, begin) > 1 || strings.Count(doc, end) > 1:
		return "", fmt.Errorf("section %q: markers appear more than once", name)
	}
	return doc[:i+len(begin)] + "\n" + content + doc[j:], nil
}

// writeSection replaces section name of the file at path (creating it).
func writeSection(path, name, content string) error {
	old, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	doc, err := replaceSection(string(old), name, content)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(doc), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func jsonOut(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// machine describes where figures were measured.
type machine struct {
	CPU    string  `json:"cpu"`
	Cores  int     `json:"cores"`
	MemGiB float64 `json:"mem_gib"`
	Go     string  `json:"go"`
	Kernel string  `json:"kernel"`
	Date   string  `json:"date"`
	Redis  string  `json:"redis,omitempty"`
}

func machineInfo() machine {
	m := machine{Cores: runtime.NumCPU(), Go: runtime.Version(), Date: time.Now().UTC().Format("2006-01-02 15:04 UTC")}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "MemTotal:"); ok {
				m.MemGiB = float64(kib(v)) / (1 << 20)
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	return m
}

func (m machine) String() string {
	s := fmt.Sprintf("%s, %d cores, %.0f GiB, %s, Linux %s", m.CPU, m.Cores, m.MemGiB, m.Go, m.Kernel)
	if m.Redis != "" {
		s += ", " + m.Redis
	}
	return s
}

// num formats n with thousands separators.
func num[T int | int64](n T) string {
	s := strconv.FormatInt(int64(n), 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

func metWord(ok bool) string {
	if ok {
		return "**met**"
	}
	return "**not met**"
}

// soakMarkdown is the soak section of docs/benchmarks.md.
func soakMarkdown(r *soakReport, m machine) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Measured %s on %s.\n\n", m.Date, m)
	fmt.Fprintf(&b, "```sh\n%s\n```\n\n", r.Command)
	f := r.Final
	fmt.Fprintf(&b, "%.0f s on the %s engine: %d watchers, %d chatters at %.1f messages/s, %d churning clients (likes every second), %.1f checkouts/s, %d couriers, %d Redis restarts.\n\n",
		r.Seconds, r.Engine, r.Watchers, r.Chatters, r.ChatRate, r.Churn, r.CheckoutRate, r.Couriers, r.RedisRestarts)
	b.WriteString("| t (s) | open conns | connects | errors | chat sent | chat missing | chat p99 ms | likes | checkouts | courier points | server RSS MiB | heap MiB | goroutines | events |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	step := max(1, len(r.Rows)/20)
	for i, row := range r.Rows {
		if i%step != 0 && i != len(r.Rows)-1 && row.Events == "" {
			continue
		}
		fmt.Fprintf(&b, "| %.0f | %d | %s | %d | %s | %d | %.1f | %s | %s | %s | %.1f | %.1f | %d | %s |\n",
			row.T, row.OpenConns, num(row.Connects), row.Errors, num(row.ChatSent), row.ChatMissing, row.ChatP99MS,
			num(row.Likes), num(row.Checkouts), num(row.CourierPoints), row.RSSMiB, row.HeapMiB, row.Goroutines, row.Events)
	}
	b.WriteString("\n")
	mem := r.Memory
	verdict := "not flat"
	if mem.Flat {
		verdict = "flat"
	}
	fmt.Fprintf(&b, "- Server memory: RSS %.1f MiB after warm-up, %.1f MiB at the end (%+.1f%%, peak %.1f), %+.2f MiB/min over the second half; Go heap in use %.1f → %.1f MiB; goroutines %d → %d. **%s** (%s).\n",
		mem.WarmRSSMiB, mem.LastRSSMiB, mem.GrowthPercent, mem.MaxRSSMiB, mem.SlopeMiBPerMin, mem.WarmHeapMiB, mem.LastHeapMiB, mem.WarmGoroutines, mem.LastGoroutines, verdict, flatRule)
	fmt.Fprintf(&b, "- Chat: %s messages acknowledged, %d refused; %d (watcher, message) pairs lost; %d not recoverable after a failed recovery. Watchers reconnected %d times (%d recovered, %d not).\n",
		num(f.ChatSent), f.ChatErrors, r.ChatLost, r.ChatExcused, r.Reconnects, r.Recovered, r.NotRecovered)
	fmt.Fprintf(&b, "- Connections: %s made, %d failed. Likes: %s calls, %d failed. Checkouts: %s answered 201 (%d paid), %d failed; %s. Courier locations: %s accepted, %d refused, %d lost.\n",
		num(f.Connects), f.ConnectErrors, num(f.Likes), f.LikeErrors, num(f.Checkouts), r.Paid, f.CheckoutErrors, r.StockCheck, num(f.CourierPoints), f.CourierErrors, r.CourierLost)
	if len(r.Errors) > 0 {
		b.WriteString("- Errors by kind:")
		for _, k := range sortedKeys(r.Errors) {
			e := r.Errors[k]
			fmt.Fprintf(&b, " %s %d (%s);", k, e.Count, strings.Join(e.Samples, " / "))
		}
		b.WriteString("\n")
	} else {
		b.WriteString("- No errors.\n")
	}
	return b.String()
}

func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }
