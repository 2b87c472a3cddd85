package policy

import (
	"errors"
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
// a string (numbers and booleans are not guessed at).
func (t template) render(claims map[string]any) (string, string, bool) {
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

// roomPattern is a room name pattern: * matches any run of characters (none included), and
// {claims.x} is replaced by that claim, matched literally (a * in a claim is just a character).
type roomPattern struct {
	chunks []template // the text between the stars
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
	return p, nil
}

func (p roomPattern) match(room string, claims map[string]any) bool {
	var buf [8]string // patterns rarely have more than a few stars: no allocation then
	chunks := buf[:0]
	if len(p.chunks) > len(buf) {
		chunks = make([]string, 0, len(p.chunks))
	}
	chunks = chunks[:len(p.chunks)]
	for i, t := range p.chunks {
		s, _, ok := t.render(claims)
		if !ok {
			return false
		}
		chunks[i] = s
	}
	return globMatch(chunks, room)
}

// globMatch reports whether s is chunks[0] * chunks[1] * ... * chunks[n-1].
func globMatch(chunks []string, s string) bool {
	if len(chunks) == 1 {
		return s == chunks[0]
	}
	first, last := chunks[0], chunks[len(chunks)-1]
	if len(s) < len(first)+len(last) || !strings.HasPrefix(s, first) || !strings.HasSuffix(s, last) {
		return false
	}
	middle := s[len(first) : len(s)-len(last)]
	for _, c := range chunks[1 : len(chunks)-1] {
		i := strings.Index(middle, c)
		if i < 0 {
			return false
		}
		middle = middle[i+len(c):]
	}
	return true
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
