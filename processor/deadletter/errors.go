package deadletter

import "errors"

// ErrBadHeader means a textpulse.* header of a dead letter has a value that
// cannot be parsed. It is permanent: reading the record again gives the same
// value.
var ErrBadHeader = errors.New("bad dead-letter header")

// ErrReplayIncomplete is returned by a replay when some dead letters were
// not sent.
var ErrReplayIncomplete = errors.New("replay incomplete")
