package campaign

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/livehub/livehub/internal/commerce"
)

// Bounds of a Message. The platforms cut long alerts anyway, and a short
// limit keeps a campaign of a million jobs small in the queue.
const (
	MaxTitleRunes = 100
	MaxBodyRunes  = 200
	maxKeyLen     = 64
	maxArgs       = 5
	maxArgRunes   = 100
)

// Message is what the followers see: a title and a body as plain text, or
// keys into the app's localization tables with their arguments, or both
// (the text is shown when the app lacks the keys).
type Message struct {
	Title     string   `json:"title,omitempty"`
	Body      string   `json:"body,omitempty"`
	TitleKey  string   `json:"title_key,omitempty"`
	TitleArgs []string `json:"title_args,omitempty"`
	BodyKey   string   `json:"body_key,omitempty"`
	BodyArgs  []string `json:"body_args,omitempty"`
}

// normalize trims the text fields and returns an EINVALID commerce error
// naming the first field at fault.
func (m Message) normalize() (Message, error) {
	m.Title = strings.TrimSpace(m.Title)
	m.Body = strings.TrimSpace(m.Body)
	if err := checkText("title", m.Title, MaxTitleRunes); err != nil {
		return m, err
	}
	if err := checkText("body", m.Body, MaxBodyRunes); err != nil {
		return m, err
	}
	if err := checkKey("title_key", m.TitleKey, m.TitleArgs); err != nil {
		return m, err
	}
	if err := checkKey("body_key", m.BodyKey, m.BodyArgs); err != nil {
		return m, err
	}
	if m.Title == "" && m.Body == "" && m.TitleKey == "" && m.BodyKey == "" {
		return m, commerce.FieldError("body", "a message needs a title or a body, as text or as a localization key")
	}
	return m, nil
}

// checkText accepts plain text: valid UTF-8 of at most max runes, with no
// control characters but line breaks, and no markup.
func checkText(field, s string, max int) error {
	if !utf8.ValidString(s) {
		return commerce.FieldError(field, "%s is not valid UTF-8", field)
	}
	if n := utf8.RuneCountInString(s); n > max {
		return commerce.FieldError(field, "%s is %d characters long; at most %d are allowed", field, n, max)
	}
	for _, r := range s {
		if r == '\n' {
			continue
		}
		if unicode.IsControl(r) || r == '<' || r == '>' {
			return commerce.FieldError(field, "%s must be plain text, without control characters or markup", field)
		}
	}
	return nil
}

func checkKey(field, key string, args []string) error {
	argsField := strings.TrimSuffix(field, "_key") + "_args"
	if key == "" {
		if len(args) > 0 {
			return commerce.FieldError(argsField, "%s need a %s", argsField, field)
		}
		return nil
	}
	if len(key) > maxKeyLen {
		return commerce.FieldError(field, "%s is longer than %d characters", field, maxKeyLen)
	}
	for i := 0; i < len(key); i++ {
		b := key[i]
		if !(b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b == '_' || b == '.' || b == '-') {
			return commerce.FieldError(field, "%s may hold only letters, digits, '_', '.' and '-'", field)
		}
	}
	if len(args) > maxArgs {
		return commerce.FieldError(argsField, "at most %d %s are allowed", maxArgs, argsField)
	}
	for _, a := range args {
		if err := checkText(argsField, a, maxArgRunes); err != nil {
			return err
		}
	}
	return nil
}
