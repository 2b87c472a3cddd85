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
	// The first and last chunks are compared part by part, so that a pattern such as
	// "{claims.org}-*" matches without building the string it stands for.
	rest, ok := p.chunks[0].trimPrefix(room, claims)
	if !ok {
		return false
	}
	if len(p.chunks) == 1 {
		return rest == ""
	}
	if rest, ok = p.chunks[len(p.chunks)-1].trimSuffix(rest, claims); !ok {
		return false
	}
	for _, t := range p.chunks[1 : len(p.chunks)-1] {
		c, _, ok := t.render(claims)
		if !ok {
			return false
		}
		i := strings.Index(rest, c)
		if i < 0 {
			return false
		}
		rest = rest[i+len(c):]
	}
	return true
}

// trimPrefix removes the template's text from the start of s, if s starts with it.
func (t template) trimPrefix(s string, claims map[string]any) (string, bool) {
	for _, p := range t.parts {
		v, ok := p.text(claims)
		if !ok || !strings.HasPrefix(s, v) {
			return "", false
		}
		s = s[len(v):]
	}
	return s, true
}

// trimSuffix removes the template's text from the end of s, if s ends with it.
func (t template) trimSuffix(s string, claims map[string]any) (string, bool) {
	for i := len(t.parts) - 1; i >= 0; i-- {
		v, ok := t.parts[i].text(claims)
		if !ok || !strings.HasSuffix(s, v) {
			return "", false
		}
		s = s[:len(s)-len(v)]
	}
	return s, true
}

func (p templatePart) text(claims map[string]any) (string, bool) {
	if p.claim == nil {
		return p.literal, true
	}
	return claimString(claims, p.claim)
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
