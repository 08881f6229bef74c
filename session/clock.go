package session

import "time"

// Clock tells the time. The Manager reads every instant through it, so tests
// can move time instead of waiting (see sessiontest.Clock).
type Clock interface {
	Now() time.Time
}

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

// SystemClock is the real clock, the default.
var SystemClock Clock = systemClock{}
