package policy

import "testing"

func TestRoomPatterns(t *testing.T) {
	claims := map[string]any{"org": "acme", "sub": "u1", "team": map[string]any{"id": "t*7"}, "n": 3.0}
	for _, c := range []struct {
		pattern, room string
		want          bool
	}{
		{"lobby", "lobby", true},
		{"lobby", "lobby2", false},
		{"*", "", true},
		{"*", "anything", true},
		{"acme-*", "acme-", true},
		{"acme-*", "acme-standup", true},
		{"acme-*", "globex-standup", false},
		{"{claims.org}-*", "acme-standup", true},
		{"{claims.org}-*", "globex-standup", false},
		{"{claims.org}-*", "acme", false},
		{"support-{claims.sub}", "support-u1", true},
		{"support-{claims.sub}", "support-u2", false},
		{"support-{claims.sub}", "support-u1x", false},
		{"*-{claims.sub}", "x-u1", true},
		{"*-{claims.sub}", "-u1", true},
		{"*-{claims.sub}", "u1", false},
		{"a*a", "a", false}, // the prefix and suffix may not share a character
		{"a*a", "aa", true},
		{"{claims.org}*{claims.sub}*end", "acme-u1-end", true},
		{"{claims.org}*{claims.sub}*end", "acme-end", false},
		{"x*{claims.org}*{claims.org}*y", "x-acme-acme-y", true},
		{"x*{claims.org}*{claims.org}*y", "x-acme-y", false},
		{"{claims.team.id}", "t*7", true},  // a claim's star is a character, not a wildcard
		{"{claims.team.id}", "t-7", false}, // likewise
		{"{claims.missing}-*", "-x", false},
		{"{claims.n}-*", "3-x", false}, // numbers are not guessed at
	} {
		p, err := parseRoomPattern(c.pattern)
		if err != nil {
			t.Fatalf("%q: %v", c.pattern, err)
		}
		if got := p.match(c.room, claims); got != c.want {
			t.Errorf("%q against room %q: %v, want %v", c.pattern, c.room, got, c.want)
		}
	}
}
