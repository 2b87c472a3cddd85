// Package wait polls a condition until it holds or a deadline passes, so that tests order on
// what they can observe instead of on sleeps. Import it only from tests and test support.
package wait

import (
	"fmt"
	"net/http"
	"testing"
	"time"
)

// interval is how often a condition is polled: short next to every bound the tests use, long
// enough not to load the machine.
const interval = 10 * time.Millisecond

// Until polls condition until it returns nil, and returns nil then; after timeout it returns the
// condition's last error. The condition runs at least once.
func Until(timeout time.Duration, condition func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := condition()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not within %s: %w", timeout, err)
		}
		time.Sleep(interval)
	}
}

// For is Until for a test, which it fails with the last error when the condition does not hold
// in time.
func For(tb testing.TB, timeout time.Duration, condition func() error) {
	tb.Helper()
	if err := Until(timeout, condition); err != nil {
		tb.Fatal(err)
	}
}

// Status is a condition that holds when GET url answers the status want.
func Status(url string, want int) func() error {
	return func() error {
		resp, err := http.Get(url)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			return fmt.Errorf("GET %s = %d, want %d", url, resp.StatusCode, want)
		}
		return nil
	}
}
