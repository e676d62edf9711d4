package main

import (
	"strings"
	"testing"
)

func TestSuiteMarkdown_ShowsMetAndNotMetBesideTargets(t *testing.T) {
	r := &suiteReport{
		Machine: machine{CPU: "Test CPU", Cores: 2, MemGiB: 4, Go: "go1.26", Kernel: "6.1", Date: "2026-01-02 03:04 UTC"},
		Figures: []suiteFigure{
			{Name: "one room", Figure: "p99 12.0 ms", Target: "p99 ≤ 33 ms", Met: boolp(true), Command: "livehub-bench -mode room"},
			{Name: "checkouts", Figure: "1,000 checkouts/s", Target: "≥ 10,000 checkouts/s", Met: boolp(false), Command: "livehub-bench -mode checkout"},
			{Name: "pipe | name", Figure: "a|b", Target: "t", Command: "x"},
		},
		GoBench: parseGoBench("goos: linux\nBenchmarkBroadcast/subscribers=100-2   \t  265110\t      4512 ns/op\t  22163237 deliveries/s\t 0.05600 allocs/delivery\nPASS\n"),
	}
	md := suiteMarkdown(r)
	for _, want := range []string{
		"| one room | p99 12.0 ms | p99 ≤ 33 ms | **met** | `livehub-bench -mode room` |",
		"| checkouts | 1,000 checkouts/s | ≥ 10,000 checkouts/s | **not met** | `livehub-bench -mode checkout` |",
		`| pipe \| name | a\|b | t | — |`,
		"Test CPU, 2 cores, 4 GiB, go1.26, Linux 6.1",
		"2026-01-02 03:04 UTC",
		"| BenchmarkBroadcast/subscribers=100-2 | 4.5 µs | 22,163,237 deliveries/s, 0.056 allocs/delivery |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
}

func TestReplaceSection_KeepsProseAndMarkers(t *testing.T) {
	doc := "# Benchmarks\n\nHand-written intro.\n\n" + beginMarker("suite") + "\nold figures\n" + endMarker("suite") + "\n\nHand-written outro.\n"
	out, err := replaceSection(doc, "suite", "new figures\n")
	if err != nil {
		t.Fatal(err)
	}
	want := "# Benchmarks\n\nHand-written intro.\n\n" + beginMarker("suite") + "\nnew figures\n" + endMarker("suite") + "\n\nHand-written outro.\n"
	if out != want {
		t.Errorf("got:\n%s\nwant:\n%s", out, want)
	}
	// Running again changes nothing but the section.
	again, err := replaceSection(out, "suite", "new figures")
	if err != nil || again != want {
		t.Errorf("second replace (%v):\n%s", err, again)
	}
	// Another section leaves this one alone and is appended.
	two, err := replaceSection(out, "soak", "soak rows")
	if err != nil || !strings.HasPrefix(two, want) || !strings.HasSuffix(two, beginMarker("soak")+"\nsoak rows\n"+endMarker("soak")+"\n") {
		t.Errorf("appending a section:\n%s", two)
	}
}

func TestReplaceSection_RefusesBrokenMarkers(t *testing.T) {
	for name, doc := range map[string]string{
		"end only":     "x\n" + endMarker("suite") + "\n",
		"begin only":   beginMarker("suite") + "\nx\n",
		"out of order": endMarker("suite") + "\n" + beginMarker("suite") + "\n",
		"twice":        beginMarker("suite") + "\n" + endMarker("suite") + "\n" + beginMarker("suite") + "\n" + endMarker("suite") + "\n",
	} {
		if _, err := replaceSection(doc, "suite", "y"); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestMemoryOf_FlatAndGrowing(t *testing.T) {
	var flat, growing []soakRow
	for i := 0; i < 20; i++ {
		flat = append(flat, soakRow{T: float64(i * 30), RSSMiB: 100 + float64(i%3), HeapMiB: 20, Goroutines: 500})
		growing = append(growing, soakRow{T: float64(i * 30), RSSMiB: 100 + 5*float64(i), HeapMiB: 20 + 2*float64(i), Goroutines: 500 + 10*int64(i)})
	}
	if m := memoryOf(flat); !m.Flat || m.SlopeMiBPerMin > 1 || m.SlopeMiBPerMin < -1 {
		t.Errorf("flat rows judged %+v", m)
	}
	m := memoryOf(growing)
	if m.Flat || m.SlopeMiBPerMin < 9 || m.GrowthPercent <= 0 {
		t.Errorf("growing rows judged %+v", m)
	}
}

func TestParseChatSeq(t *testing.T) {
	ev := []byte(`{"type":"chat.message","v":1,"data":{"id":"msg_1","text":"soak 42 1712345678901234567","user_id":"u"}}`)
	seq, ts, ok := parseChatSeq(ev)
	if !ok || seq != 42 || ts != 1712345678901234567 {
		t.Errorf("got %d %d %v", seq, ts, ok)
	}
	for _, bad := range []string{`{"text":"hello"}`, `{"text":"soak x 1"}`, `{"text":"soak 4"}`} {
		if _, _, ok := parseChatSeq([]byte(bad)); ok {
			t.Errorf("%s parsed", bad)
		}
	}
}

func TestRoomMix_DeterministicAndValid(t *testing.T) {
	a, b := roomMix(500, 7), roomMix(500, 7)
	types := map[string]int{}
	for i := range a {
		if string(a[i]) != string(b[i]) {
			t.Fatalf("event %d differs between two mixes of one seed", i)
		}
		typ, _, ok := strings.Cut(strings.TrimPrefix(string(a[i]), `{"at":`), `"type":"`)
		_ = typ
		if !ok {
			t.Fatalf("event %d has no type: %s", i, a[i])
		}
		name, _, _ := strings.Cut(strings.SplitN(string(a[i]), `"type":"`, 2)[1], `"`)
		types[name]++
	}
	for _, want := range []string{"chat.message", "likes.count", "viewers.count", "flash_sale.stock"} {
		if types[want] == 0 {
			t.Errorf("no %s in the mix: %v", want, types)
		}
	}
}

func TestSelectVariants(t *testing.T) {
	all, err := selectVariants("")
	if err != nil || len(all) != len(wireVariants) {
		t.Fatalf("default: %d variants, %v", len(all), err)
	}
	got, err := selectVariants("protobuf, json+deflate-takeover")
	if err != nil || len(got) != 2 || !got[0].Protobuf || got[0].Deflate || !got[1].Takeover {
		t.Fatalf("selected %+v, %v", got, err)
	}
	if _, err := selectVariants("json,brotli"); err == nil {
		t.Fatal("an unknown variant was accepted")
	}
}
