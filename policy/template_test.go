package policy

import (
	"strings"
	"testing"
)

func TestRoomPatterns(t *testing.T) {
	claims := map[string]any{"org": "acme", "sub": "u1", "team": map[string]any{"id": "t*7"}, "n": 3.0, "dashed": "acme-corp"}
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
		{"acme-*", "acme-standup-daily", true}, // no placeholder: * is any run
		{"acme-*", "globex-standup", false},
		{"{claims.org}-*", "acme-standup", true},
		{"{claims.org}-*", "globex-standup", false},
		{"{claims.org}-*", "acme", false},
		// A * next to a placeholder's separator is one segment: acme-corp's rooms are not acme's.
		{"{claims.org}-*", "acme-corp-standup", false},
		{"{claims.dashed}-*", "acme-corp-standup", true},
		{"{claims.org}-*", "acme-", true},
		{"support-{claims.sub}", "support-u1", true},
		{"support-{claims.sub}", "support-u2", false},
		{"support-{claims.sub}", "support-u1x", false},
		{"*-{claims.sub}", "x-u1", true},
		{"*-{claims.sub}", "-u1", true},
		{"*-{claims.sub}", "u1", false},
		{"*-{claims.sub}", "x-y-u1", false},
		{"team-*-{claims.org}-*", "team-a-acme-b", true},
		{"team-*-{claims.org}-*", "team-a-acme-corp-b", false},
		{"team-*-{claims.org}-*", "team-a-b-acme-c", false},
		{"a*a", "a", false}, // the prefix and suffix may not share a character
		{"a*a", "aa", true},
		{"{claims.org}-*-{claims.sub}-end", "acme-x-u1-end", true},
		{"{claims.org}-*-{claims.sub}-end", "acme-u1-end", false},
		{"{claims.dashed}-*-{claims.sub}", "acme-corp-x-u1", false}, // two placeholders: values may not hold a separator
		{"x-*-{claims.org}-{claims.org}-*", "x-1-acme-acme-2", true},
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
	// Nothing can tell where a placeholder's value ends next to a * or another placeholder.
	for _, pattern := range []string{"{claims.org}*", "*{claims.org}", "x-*{claims.org}-y", "{claims.a}{claims.b}", "{claims.org}*-x"} {
		if _, err := parseRoomPattern(pattern); err == nil || !strings.Contains(err.Error(), "placeholder") && !strings.Contains(err.Error(), "written character") {
			t.Errorf("%q: accepted (%v)", pattern, err)
		}
	}
}

// FuzzRoomPatternsCannotBeCrossed tries to make one room match a pattern for two different
// claim values: a room of tenant x1 that tenant x2's claims also reach. It builds the room from
// the pattern and x1's claims, filling each * with a segment, then asks whether x2's claims
// match it too.
func FuzzRoomPatternsCannotBeCrossed(f *testing.F) {
	for _, seed := range [][7]string{
		{"{claims.x}-*", "acme", "acme-corp", "", "", "corp-standup", "x"},
		{"{claims.x}-*", "acme-corp", "acme", "", "", "standup", "x"},
		{"{claims.x}*", "acme", "acmecorp", "", "", "corp", ""},
		{"*-{claims.x}", "corp", "acme-corp", "", "", "acme", ""},
		{"team-*-{claims.x}-*", "acme", "acme-corp", "", "", "a", "corp-b"},
		{"{claims.x}-{claims.y}", "a-b", "a", "c", "b-c", "", ""},
		{"{claims.x}_{claims.y}-*", "a", "a_b", "c-d", "d", "x", "y"},
		{"x{claims.x}y*", "1y2", "1", "", "", "2", "3"},
	} {
		f.Add(seed[0], seed[1], seed[2], seed[3], seed[4], seed[5], seed[6])
	}
	f.Fuzz(func(t *testing.T, pattern, x1, x2, y1, y2, seg1, seg2 string) {
		p, err := parseRoomPattern(pattern)
		if err != nil || p.placeholders == 0 {
			return
		}
		claims1 := map[string]any{"x": x1, "y": y1}
		claims2 := map[string]any{"x": x2, "y": y2}
		differ := false // on a claim the pattern reads
		var room strings.Builder
		for i, chunk := range p.chunks {
			if i > 0 {
				room.WriteString([]string{seg1, seg2}[i%2])
			}
			for _, part := range chunk.parts {
				if part.claim != nil {
					a, _ := claimString(claims1, part.claim)
					b, _ := claimString(claims2, part.claim)
					differ = differ || a != b
				}
			}
			text, _, ok := chunk.render(claims1)
			if !ok {
				return
			}
			room.WriteString(text)
		}
		if differ && p.match(room.String(), claims1) && p.match(room.String(), claims2) {
			t.Fatalf("room %q matches %q for %v and for %v", room.String(), pattern, claims1, claims2)
		}
	})
}
