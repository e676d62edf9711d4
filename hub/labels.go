package hub

import "strconv"

func codeLabel(code uint32) string { return strconv.FormatUint(uint64(code), 10) }

func boolLabel(b bool) string {
	if b {
		return "true"
	}
	return "false"
}
