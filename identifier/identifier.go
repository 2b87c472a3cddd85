// Package identifier holds the rules for the names LiveKit compares and shows: room names and
// participant identities (identifiers), and display names. Request validation (package token)
// applies them to what a caller sends, and the grant policy to what it fills in from an end
// user's claims, so that both hold every value to one rule.
package identifier

import (
	"errors"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/secure/precis"
)

// MaxBytes is the longest room, identity or display name.
const MaxBytes = 256

// Reasons a value is refused; each is a sentence fragment that follows the field's name.
var (
	ErrTooLong     = errors.New("must be at most " + strconv.Itoa(MaxBytes) + " bytes")
	ErrInvalidUTF8 = errors.New("must be valid UTF-8")
	ErrControl     = errors.New("must not contain control characters")
	ErrSpaces      = errors.New("must not begin or end with a space, nor hold two in a row")
	ErrNotPRECIS   = errors.New("may hold only letters, digits, printable ASCII and single spaces (PRECIS UsernameCasePreserved)")
	ErrDisplayName = errors.New("must be a display name as PRECIS Nickname allows it: no invisible or format characters, no space at either end or two in a row")
)

// basic is the rule every name shares: at most MaxBytes of valid UTF-8 without control
// characters, since these strings end up in LiveKit's UI and logs.
func basic(value string) error {
	switch {
	case len(value) > MaxBytes:
		return ErrTooLong
	case !utf8.ValidString(value):
		return ErrInvalidUTF8
	case strings.ContainsFunc(value, unicode.IsControl):
		return ErrControl
	}
	return nil
}

// Check is the rule for a room or an identity, which LiveKit and every UI compare byte for
// byte: the PRECIS UsernameCasePreserved profile (RFC 8265) applied to each space-separated
// part, as RFC 8265 applies it to a username. So letters and digits of any script and printable
// ASCII are allowed, single spaces between parts, and nothing else: no format characters
// (U+200B, U+FEFF, U+00AD, U+202E), no separators other than U+0020 (U+2028, U+00A0), no symbols
// outside ASCII, no private-use or unassigned code points. A value the profile would change
// (fullwidth letters fold to ASCII) is refused, not rewritten, so that a token carries exactly
// what was asked. The empty string passes: whether a value is required is the caller's rule.
func Check(value string) error {
	if err := basic(value); err != nil || value == "" || plainASCII(value) {
		return err
	}
	if value[0] == ' ' || value[len(value)-1] == ' ' || strings.Contains(value, "  ") {
		return ErrSpaces
	}
	for part := range strings.SplitSeq(value, " ") {
		if enforced, err := precis.UsernameCasePreserved.String(part); err != nil || enforced != part {
			return ErrNotPRECIS
		}
	}
	return nil
}

// CheckDisplayName is the rule for a participant's display name: the PRECIS Nickname profile
// (RFC 8266). A name the profile would change (spaces at either end or two in a row,
// compatibility forms such as fullwidth letters or ligatures) is refused, not rewritten.
func CheckDisplayName(value string) error {
	if err := basic(value); err != nil || value == "" || plainASCII(value) {
		return err
	}
	if enforced, err := precis.Nickname.String(value); err != nil || enforced != value {
		return ErrDisplayName
	}
	return nil
}

// plainASCII is the common case that needs no PRECIS: printable ASCII with single inner spaces.
func plainASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == ' ' && (i == 0 || i == len(s)-1 || s[i-1] == ' ') {
			return false
		}
	}
	return true
}
