package logging

import (
	"sync/atomic"
	"time"
)

// PerSecond lets a line through at most once a second: for a warning that an outage or a flood
// would otherwise repeat once per request (a metric counts every occurrence). The zero value
// is ready.
type PerSecond struct{ last atomic.Int64 }

// Allow reports whether a line may be written now.
func (p *PerSecond) Allow() bool {
	now := time.Now().Unix()
	return p.last.Swap(now) != now
}
