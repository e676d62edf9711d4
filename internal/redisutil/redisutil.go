// Package redisutil holds what LiveHub's Redis-backed stores (the commerce
// store, the live rooms, courier tracking) share: hash-tagged key names,
// their Lua scripts embedded in the binary, and the mapping of the client's
// errors to commerce errors.
package redisutil

import (
	"embed"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/livehub/livehub/internal/commerce"
)

// Tag returns the hash tag of an entity of the given kind and id, "{kind:id}",
// so that every key of the entity sits in one Redis Cluster slot and its
// scripts may touch them all. An empty id, or one holding a brace that
// would break the tag, is tagged by a hash of it instead: "{kind#h}id".
func Tag(kind, id string) string {
	if id == "" || strings.ContainsAny(id, "{}") {
		h := fnv.New64a()
		_, _ = h.Write([]byte(id))
		return "{" + kind + "#" + strconv.FormatUint(h.Sum64(), 36) + "}" + id
	}
	return "{" + kind + ":" + id + "}"
}

// CheckPrefix panics when a key prefix holds a brace, which would make it
// part of, or break, the keys' hash tags. pkg names the caller in the
// message.
func CheckPrefix(pkg, prefix string) {
	if strings.ContainsAny(prefix, "{}") {
		panic(fmt.Sprintf("%s: prefix %q contains a brace", pkg, prefix))
	}
}

// MustScript returns the script lua/name of files. The scripts run with
// EVALSHA and fall back to EVAL when Redis does not have them yet (a
// restart, a new Cluster node), which redis.Script does. It panics when the
// file is missing: a build without it is broken.
func MustScript(files embed.FS, name string) *redis.Script {
	b, err := files.ReadFile("lua/" + name)
	if err != nil {
		panic(err)
	}
	return redis.NewScript(string(b))
}

// unavailableReplies are the reply prefixes of a Redis that is up but
// cannot serve now (loading, failing over, out of memory, busy with a
// script, a slot moving).
var unavailableReplies = []string{"LOADING", "CLUSTERDOWN", "TRYAGAIN", "MASTERDOWN", "READONLY", "NOREPLICAS", "BUSY", "OOM", "MOVED", "ASK"}

// Fail turns an error of the client into a commerce.Error about what (the
// thing the caller is, as its users know it: "the store", "the room"):
// EUNAVAILABLE ("... is busy; try again") when Redis is up but cannot serve
// now, EUNAVAILABLE ("... is not answering; try again") when it cannot be
// reached, EINTERNAL ("... failed") for any other reply, which is a bug.
// Domain errors pass through; nil stays nil. The cause, kept for the logs,
// is wrapped as "pkg: op: err".
func Fail(pkg, what, op string, err error) error {
	if err == nil {
		return nil
	}
	var ce *commerce.Error
	if errors.As(err, &ce) {
		return err
	}
	wrapped := fmt.Errorf("%s: %s: %w", pkg, op, err)
	var re redis.Error
	if errors.As(err, &re) && !errors.Is(err, redis.Nil) {
		msg := re.Error()
		for _, p := range unavailableReplies {
			if strings.HasPrefix(msg, p) {
				return &commerce.Error{Code: commerce.EUNAVAILABLE, Message: what + " is busy; try again", Err: wrapped}
			}
		}
		return &commerce.Error{Code: commerce.EINTERNAL, Message: what + " failed", Err: wrapped}
	}
	return &commerce.Error{Code: commerce.EUNAVAILABLE, Message: what + " is not answering; try again", Err: wrapped}
}

// Internal is the EINTERNAL error of a reply the caller cannot read.
func Internal(pkg, what, op, format string, args ...any) error {
	return &commerce.Error{Code: commerce.EINTERNAL, Message: what + " failed", Err: fmt.Errorf(pkg+": "+op+": "+format, args...)}
}
