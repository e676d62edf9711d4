package room

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/livehub/livehub/hub"
	"github.com/livehub/livehub/internal/commerce"
)

func TestMessageWords_DistinctLowercaseWholeWords(t *testing.T) {
	cases := []struct {
		text string
		want []string
	}{
		{"Beli SPAM, spam & Spam!", []string{"beli", "spam"}},
		{"classy spammer", []string{"classy", "spammer"}},
		{"harga 150rb?!", []string{"harga", "150rb"}},
		{"ÉTÉ été", []string{"été"}},
		{"🔥🔥 ...", nil},
		{"", nil},
	}
	for _, tc := range cases {
		if got := messageWords(tc.text); !slices.Equal(got, tc.want) {
			t.Errorf("messageWords(%q) = %q, want %q", tc.text, got, tc.want)
		}
	}
}

func TestMaskWords_KeepsEverythingButTheWords(t *testing.T) {
	cases := []struct {
		text  string
		muted []string
		want  string
	}{
		{"Beli SPAM, bukan barang Jelek!", []string{"spam", "jelek"}, "Beli ****, bukan barang ****!"},
		{"spam spammer spam", []string{"spam"}, "**** spammer ****"},
		{"ÉTÉ ok", []string{"été"}, "**** ok"},
		{"nothing here", []string{"spam"}, "nothing here"},
	}
	for _, tc := range cases {
		if got := maskWords(tc.text, tc.muted); got != tc.want {
			t.Errorf("maskWords(%q) = %q, want %q", tc.text, got, tc.want)
		}
	}
}

func TestNormalizeMutedWords(t *testing.T) {
	got, err := normalizeMutedWords([]string{" Spam ", "spam", "JELEK"})
	if err != nil || !slices.Equal(got, []string{"spam", "jelek"}) {
		t.Fatalf("got %q %v", got, err)
	}
	for field, words := range map[string][]string{
		"words[1]": {"ok", "two words"},
		"words[0]": {""},
		"words[2]": {"a", "b", strings.Repeat("x", 51)},
		"words":    make([]string, 201),
	} {
		_, err := normalizeMutedWords(words)
		var ce *commerce.Error
		if !errors.As(err, &ce) || ce.Field != field {
			t.Errorf("%q: error %v, want one on field %s", words, err, field)
		}
	}
}

func TestParseChat_StrictShape(t *testing.T) {
	if text, err := parseChat([]byte(` {"text":" hi "} `), 300); err != nil || text != "hi" {
		t.Fatalf("%q %v", text, err)
	}
	for _, data := range []string{`{"text":"a"} {"text":"b"}`, `{"text":"a"}}`, `{"text":"a"`, `[]`, ``} {
		if _, err := parseChat([]byte(data), 300); err == nil {
			t.Errorf("%s accepted", data)
		}
	}
}

func TestRemaining_ReadsLikeAPerson(t *testing.T) {
	for d, want := range map[time.Duration]string{
		300 * time.Millisecond:                      "1s",
		45*time.Second + 400*time.Millisecond:       "45s",
		4*time.Minute + 30*time.Second:              "4m30s",
		2*time.Hour + 10*time.Second:                "2h0m",
		26*time.Hour + 29*time.Minute + time.Second: "26h29m",
	} {
		if got := remaining(d); got != want {
			t.Errorf("remaining(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestLikesRate(t *testing.T) {
	now := time.Now()
	every := 500 * time.Millisecond
	cases := []struct {
		name  string
		total int64
		a     Announcement
		want  float64
	}{
		{"first", 100, Announcement{}, 200},
		{"one interval", 150, Announcement{Previous: 100, PreviousAt: now.Add(-every)}, 100},
		{"quiet spell counts two intervals at most", 110, Announcement{Previous: 100, PreviousAt: now.Add(-time.Hour)}, 10},
		{"early tick counts a whole interval", 110, Announcement{Previous: 100, PreviousAt: now.Add(-time.Millisecond)}, 20},
		{"no change", 100, Announcement{Previous: 100, PreviousAt: now.Add(-every)}, 0},
	}
	for _, tc := range cases {
		if got := likesRate(tc.total, tc.a, now, every); got != tc.want {
			t.Errorf("%s: rate %v, want %v", tc.name, got, tc.want)
		}
	}
}

// FuzzParseChat: whatever a client sends, the hook either refuses it with a
// bad request or returns clean text within the limit.
func FuzzParseChat(f *testing.F) {
	for _, s := range []string{`{"text":"halo"}`, `{"text":"a\nb"}`, `{"text":1}`, `{}`, `"x"`, `{"text":"` + strings.Repeat("é", 301) + `"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		text, err := parseChat(data, 300)
		if err != nil {
			var he *hub.Error
			if !errors.As(err, &he) || he.Code != hub.ErrorBadRequest.Code {
				t.Fatalf("error %v is not a bad request", err)
			}
			return
		}
		if text == "" || text != strings.TrimSpace(text) || utf8.RuneCountInString(text) > 300 || strings.IndexFunc(text, unicode.IsControl) >= 0 {
			t.Fatalf("accepted %q", text)
		}
	})
}
