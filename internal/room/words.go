package room

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/livehub/livehub/internal/commerce"
)

// Bounds of the muted words of a room.
const (
	maxMutedWords   = 200
	maxMutedWordLen = 50
)

// mask replaces a muted word in a masked message.
const mask = "****"

// wordRune reports whether r belongs to a word. Words are runs of letters,
// digits and combining marks, so "Class" holds no "ass" and "spam!" holds
// "spam".
func wordRune(r rune) bool {
	return unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.IsMark(r)
}

// eachWord calls f with the byte bounds of every word of text.
func eachWord(text string, f func(start, end int)) {
	start := -1
	for i, r := range text {
		if wordRune(r) {
			if start < 0 {
				start = i
			}
			continue
		}
		if start >= 0 {
			f(start, i)
			start = -1
		}
	}
	if start >= 0 {
		f(start, len(text))
	}
}

// messageWords returns the distinct lowercase words of text, the keys a
// muted-word lookup compares.
func messageWords(text string) []string {
	seen := make(map[string]struct{})
	var out []string
	eachWord(text, func(s, e int) {
		w := strings.ToLower(text[s:e])
		if _, ok := seen[w]; !ok {
			seen[w] = struct{}{}
			out = append(out, w)
		}
	})
	return out
}

// maskWords replaces every word of text whose lowercase form is in muted
// with ****, keeping everything around it.
func maskWords(text string, muted []string) string {
	set := make(map[string]struct{}, len(muted))
	for _, w := range muted {
		set[w] = struct{}{}
	}
	var b strings.Builder
	last := 0
	eachWord(text, func(s, e int) {
		if _, ok := set[strings.ToLower(text[s:e])]; ok {
			b.WriteString(text[last:s])
			b.WriteString(mask)
			last = e
		}
	})
	b.WriteString(text[last:])
	return b.String()
}

// normalizeMutedWords checks a host's list of muted words and returns it
// lowercased, without duplicates. A word is one word as messages are split:
// letters, digits and combining marks only.
func normalizeMutedWords(words []string) ([]string, error) {
	if len(words) > maxMutedWords {
		return nil, commerce.FieldError("words", "at most %d words", maxMutedWords)
	}
	seen := make(map[string]struct{}, len(words))
	out := make([]string, 0, len(words))
	for i, w := range words {
		w = strings.ToLower(strings.TrimSpace(w))
		n := utf8.RuneCountInString(w)
		if n == 0 || n > maxMutedWordLen {
			return nil, commerce.FieldError(fieldIndex("words", i), "must be 1 to %d characters", maxMutedWordLen)
		}
		if strings.IndexFunc(w, func(r rune) bool { return !wordRune(r) }) >= 0 {
			return nil, commerce.FieldError(fieldIndex("words", i), "must be a single word of letters and digits")
		}
		if _, ok := seen[w]; !ok {
			seen[w] = struct{}{}
			out = append(out, w)
		}
	}
	return out, nil
}

func fieldIndex(field string, i int) string {
	return field + "[" + strconv.Itoa(i) + "]"
}

// cleanText trims text and checks it as chat-like text: not empty, at most
// maxRunes characters, no control characters. It returns the reason when the
// text cannot be used.
func cleanText(text string, maxRunes int) (string, string) {
	text = strings.TrimSpace(text)
	if text == "" {
		return "", "the message is empty"
	}
	if !utf8.ValidString(text) {
		return "", "the message is not valid UTF-8"
	}
	if n := utf8.RuneCountInString(text); n > maxRunes {
		return "", "the message is longer than " + strconv.Itoa(maxRunes) + " characters"
	}
	if strings.IndexFunc(text, unicode.IsControl) >= 0 {
		return "", "the message contains control characters (line breaks, tabs)"
	}
	return text, ""
}
