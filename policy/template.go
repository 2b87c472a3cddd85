package policy

import (
	"errors"
	"slices"
	"strings"
)

// template is a string with {claims.x} placeholders (x may be a dotted path into nested claims),
// parsed once at load.
type template struct {
	parts []templatePart
}

type templatePart struct {
	literal string
	claim   []string // a claim path, when this part is a placeholder
}

func parseTemplate(s string) (template, error) {
	var t template
	for s != "" {
		open := strings.IndexByte(s, '{')
		if open < 0 {
			t.parts = append(t.parts, templatePart{literal: s})
			break
		}
		if open > 0 {
			t.parts = append(t.parts, templatePart{literal: s[:open]})
		}
		end := strings.IndexByte(s[open:], '}')
		if end < 0 {
			return template{}, errors.New("a { has no closing }")
		}
		name := s[open+1 : open+end]
		path, ok := strings.CutPrefix(name, "claims.")
		if !ok || path == "" || strings.Contains(path, "..") || strings.HasSuffix(path, ".") {
			return template{}, errors.New("{" + name + "} is not a placeholder: write {claims.<name>}")
		}
		t.parts = append(t.parts, templatePart{claim: strings.Split(path, ".")})
		s = s[open+end+1:]
	}
	return t, nil
}

// render fills the placeholders from claims; ok is false when a claim is missing, empty or not
// a string (numbers and booleans are not guessed at), and missing then names it.
func (t template) render(claims map[string]any) (value, missing string, ok bool) {
	if len(t.parts) == 0 {
		return "", "", true
	}
	if len(t.parts) == 1 { // the common shapes, without building a string
		if p := t.parts[0]; p.claim == nil {
			return p.literal, "", true
		} else if v, ok := claimString(claims, p.claim); ok {
			return v, "", true
		}
		return "", strings.Join(t.parts[0].claim, "."), false
	}
	var b strings.Builder
	for _, p := range t.parts {
		if p.claim == nil {
			b.WriteString(p.literal)
			continue
		}
		v, ok := claimString(claims, p.claim)
		if !ok {
			return "", strings.Join(p.claim, "."), false
		}
		b.WriteString(v)
	}
	return b.String(), "", true
}

func claimString(claims map[string]any, path []string) (string, bool) {
	var v any = claims
	for _, key := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return "", false
		}
		v = m[key]
	}
	s, ok := v.(string)
	return s, ok && s != ""
}

// roomPattern is a room name pattern: * is a wildcard and {claims.x} stands for that claim,
// matched literally (a * in a claim is just a character).
//
// A pattern with a placeholder must never let one tenant's claim value reach another's rooms:
// with {claims.org}-* and a * that matched anything, org acme would match acme-corp-standup,
// a room of org acme-corp. So in such a pattern:
//   - its separators are the characters written right before and right after each placeholder
//     (the - of {claims.org}-*);
//   - a * matches a run of characters holding no separator (one segment): acme-corp-standup is
//     then acme-corp's room "standup", never acme's "corp-standup";
//   - a placeholder must have a written character, or the pattern's start or end, on each
//     side: next to a * or another placeholder nothing could tell where its value ends, so
//     {claims.org}* is refused at load;
//   - with two or more placeholders, a claim value that holds a separator does not match, since
//     {claims.a}-{claims.b} could otherwise split x-y-z two ways.
//
// With these rules a room and a pattern determine every claim value the pattern reads (the
// property FuzzRoomPatternsCannotBeCrossed tries to break). A pattern without placeholders
// names no tenant, and its * matches any run of characters.
type roomPattern struct {
	chunks       []template // the text between the stars
	separators   string     // the characters a * may not match; empty without placeholders
	placeholders int
}

func parseRoomPattern(s string) (roomPattern, error) {
	if s == "" {
		return roomPattern{}, errors.New("a room pattern must not be empty")
	}
	var p roomPattern
	for _, chunk := range strings.Split(s, "*") {
		t, err := parseTemplate(chunk)
		if err != nil {
			return roomPattern{}, err
		}
		p.chunks = append(p.chunks, t)
	}
	var seps []rune
	for i, chunk := range p.chunks {
		for j, part := range chunk.parts {
			if part.claim == nil {
				continue
			}
			p.placeholders++
			before, after := j > 0, j < len(chunk.parts)-1
			atStart, atEnd := i == 0 && j == 0, i == len(p.chunks)-1 && j == len(chunk.parts)-1
			if !before && !atStart || !after && !atEnd {
				return roomPattern{}, errors.New("{claims." + strings.Join(part.claim, ".") + "} needs a written character (such as - or _) between it and a * or another placeholder, or nothing could tell where its value ends")
			}
			if before {
				if lit := chunk.parts[j-1].literal; lit == "" {
					return roomPattern{}, errors.New("two placeholders must not touch")
				} else {
					seps = append(seps, lastRune(lit))
				}
			}
			if after {
				if lit := chunk.parts[j+1].literal; lit == "" {
					return roomPattern{}, errors.New("two placeholders must not touch")
				} else {
					seps = append(seps, []rune(lit)[0])
				}
			}
		}
	}
	for _, r := range seps {
		if !strings.ContainsRune(p.separators, r) {
			p.separators += string(r)
		}
	}
	return p, nil
}

// claims are the claim paths the pattern reads ("org", "team.id"), each once.
func (p roomPattern) claims() []string {
	var out []string
	for _, chunk := range p.chunks {
		for _, part := range chunk.parts {
			if path := strings.Join(part.claim, "."); part.claim != nil && !slices.Contains(out, path) {
				out = append(out, path)
			}
		}
	}
	return out
}

func lastRune(s string) rune {
	r := []rune(s)
	return r[len(r)-1]
}

func (p roomPattern) match(room string, claims map[string]any) bool {
	// The first and last chunks are compared part by part, so that a pattern such as
	// "{claims.org}-*" matches without building the string it stands for.
	rest, ok := p.chunks[0].trimPrefix(room, claims, p)
	if !ok {
		return false
	}
	if len(p.chunks) == 1 {
		return rest == ""
	}
	if rest, ok = p.chunks[len(p.chunks)-1].trimSuffix(rest, claims, p); !ok {
		return false
	}
	// The leftmost place of each inner chunk is the one to take: a later one only lengthens the
	// run the * before it must match, and a run free of separators stays free when shortened.
	for _, t := range p.chunks[1 : len(p.chunks)-1] {
		c, ok := t.literalText(claims, p)
		if !ok {
			return false
		}
		i := strings.Index(rest, c)
		if i < 0 || !p.starMatches(rest[:i]) {
			return false
		}
		rest = rest[i+len(c):]
	}
	return p.starMatches(rest)
}

// starMatches reports whether a * may stand for run.
func (p roomPattern) starMatches(run string) bool {
	return p.separators == "" || !strings.ContainsAny(run, p.separators)
}

// value is a placeholder's claim as this pattern may use it: present, and free of separators
// where two placeholders could otherwise divide a room between them differently.
func (p roomPattern) value(part templatePart, claims map[string]any) (string, bool) {
	if part.claim == nil {
		return part.literal, true
	}
	v, ok := claimString(claims, part.claim)
	if ok && p.placeholders > 1 && strings.ContainsAny(v, p.separators) {
		return "", false
	}
	return v, ok
}

// literalText is an inner chunk's text with its placeholders filled in.
func (t template) literalText(claims map[string]any, p roomPattern) (string, bool) {
	if len(t.parts) == 1 {
		return p.value(t.parts[0], claims)
	}
	var b strings.Builder
	for _, part := range t.parts {
		v, ok := p.value(part, claims)
		if !ok {
			return "", false
		}
		b.WriteString(v)
	}
	return b.String(), true
}

// trimPrefix removes the template's text from the start of s, if s starts with it.
func (t template) trimPrefix(s string, claims map[string]any, p roomPattern) (string, bool) {
	for _, part := range t.parts {
		v, ok := p.value(part, claims)
		if !ok || !strings.HasPrefix(s, v) {
			return "", false
		}
		s = s[len(v):]
	}
	return s, true
}

// trimSuffix removes the template's text from the end of s, if s ends with it.
func (t template) trimSuffix(s string, claims map[string]any, p roomPattern) (string, bool) {
	for i := len(t.parts) - 1; i >= 0; i-- {
		v, ok := p.value(t.parts[i], claims)
		if !ok || !strings.HasSuffix(s, v) {
			return "", false
		}
		s = s[:len(s)-len(v)]
	}
	return s, true
}

// keyPattern is an attribute key an attribute may have: exact, "prefix*" or "*".
type keyPattern struct {
	prefix string
	exact  bool
}

func parseKeyPattern(s string) (keyPattern, error) {
	prefix, wild := strings.CutSuffix(s, "*")
	if strings.Contains(prefix, "*") || s == "" {
		return keyPattern{}, errors.New("an attribute key pattern is a key, a prefix ending in *, or *")
	}
	return keyPattern{prefix: prefix, exact: !wild}, nil
}

func (k keyPattern) match(key string) bool {
	if k.exact {
		return key == k.prefix
	}
	return strings.HasPrefix(key, k.prefix)
}
