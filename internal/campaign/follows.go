package campaign

import (
	"context"

	"github.com/livehub/livehub/internal/commerce"
)

// Follows keeps who follows which host.
//
// Page walks a host's followers in the order of their user ids, with the
// last id of a page as the cursor of the next: a walk that runs while users
// follow and unfollow still sees every follower who stayed throughout,
// exactly once.
type Follows interface {
	// Follow makes user a follower of host; following again is not an
	// error.
	Follow(ctx context.Context, host, user string) error
	// Unfollow stops user following host; unfollowing a host one does not
	// follow is not an error.
	Unfollow(ctx context.Context, host, user string) error
	// IsFollowing reports whether user follows host.
	IsFollowing(ctx context.Context, host, user string) (bool, error)
	// Count returns the number of host's followers.
	Count(ctx context.Context, host string) (int64, error)
	// Page returns up to n followers of host whose ids sort after cursor
	// ("" starts at the first), and the cursor of the next page, "" when
	// there is none.
	Page(ctx context.Context, host, cursor string, n int) (users []string, next string, err error)
}

// maxIDLen bounds host and user ids.
const maxIDLen = 128

// checkID accepts the ids of users and streams: printable ASCII without
// spaces, as hub channel names and Redis keys want them.
func checkID(field, id string) error {
	if id == "" {
		return commerce.FieldError(field, "%s is required", field)
	}
	if len(id) > maxIDLen {
		return commerce.FieldError(field, "%s is longer than %d characters", field, maxIDLen)
	}
	for i := 0; i < len(id); i++ {
		if b := id[i]; b <= ' ' || b > '~' {
			return commerce.FieldError(field, "%s may hold only printable ASCII without spaces", field)
		}
	}
	return nil
}

// checkFollow validates the ids of a follow.
func checkFollow(host, user string) error {
	if err := checkID("host_id", host); err != nil {
		return err
	}
	return checkID("user_id", user)
}
