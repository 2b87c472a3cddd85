package token

import (
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/cases"
	"golang.org/x/text/secure/precis"
	"golang.org/x/text/unicode/norm"
)

// Limits of the contract.
const (
	MaxNameBytes     = 256      // room, identity, name
	MaxMetadataBytes = 64 << 10 // LiveKit's own metadata limit
	maxAgentIDLen    = 64       // agent_id
	AgentPrefix      = "agent-" // identities in this namespace belong to /token/agent only
)

// Invalid is a client mistake in one field of a request.
type Invalid struct {
	Field  string // the JSON name, e.g. "ttl_seconds" or "grants.canPublish"
	Reason string // a sentence fragment that follows the field name
}

func (e *Invalid) Error() string { return e.Field + " " + e.Reason }

func invalidf(field, format string, args ...any) *Invalid {
	return &Invalid{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// checkName applies the rule shared by room, identity and name: at most MaxNameBytes of valid
// UTF-8 with no control characters, since these strings end up in LiveKit's UI and logs.
func checkName(field, value string, required bool) error {
	switch {
	case value == "" && required:
		return invalidf(field, "is required")
	case len(value) > MaxNameBytes:
		return invalidf(field, "must be at most %d bytes", MaxNameBytes)
	case !utf8.ValidString(value):
		return invalidf(field, "must be valid UTF-8")
	case strings.ContainsFunc(value, unicode.IsControl):
		return invalidf(field, "must not contain control characters")
	}
	return nil
}

// checkIdentifier is the rule for room and identity, which LiveKit and every UI compare byte for
// byte: checkName's, plus the PRECIS UsernameCasePreserved profile (RFC 8265) applied to each
// space-separated part, as RFC 8265 applies it to a username. So letters and digits of any
// script and printable ASCII are allowed, single spaces between parts, and nothing else: no
// format characters (U+200B, U+FEFF, U+00AD, U+202E), no separators other than U+0020 (U+2028,
// U+00A0), no symbols outside ASCII, no private-use or unassigned code points. A value the
// profile would change (fullwidth letters fold to ASCII) is refused, not rewritten, so that the
// token carries exactly what was asked.
func checkIdentifier(field, value string, required bool) error {
	if err := checkName(field, value, required); err != nil || value == "" || isPlainASCII(value) {
		return err
	}
	if value[0] == ' ' || value[len(value)-1] == ' ' || strings.Contains(value, "  ") {
		return invalidf(field, "must not begin or end with a space, nor hold two in a row")
	}
	for part := range strings.SplitSeq(value, " ") {
		if enforced, err := precis.UsernameCasePreserved.String(part); err != nil || enforced != part {
			return invalidf(field, "may hold only letters, digits, printable ASCII and single spaces (PRECIS UsernameCasePreserved)")
		}
	}
	return nil
}

// checkDisplayName is the rule for name and participant_name: checkName's, plus the PRECIS
// Nickname profile (RFC 8266). A name the profile would change (spaces at either end or two in
// a row, compatibility forms such as fullwidth letters or ligatures) is refused, not rewritten.
func checkDisplayName(field, value string) error {
	if err := checkName(field, value, false); err != nil || value == "" {
		return err
	}
	if isPlainASCII(value) {
		return nil
	}
	if enforced, err := precis.Nickname.String(value); err != nil || enforced != value {
		return invalidf(field, "must be a display name as PRECIS Nickname allows it: no invisible or format characters, no space at either end or two in a row")
	}
	return nil
}

// isPlainASCII is the common case that needs no PRECIS: printable ASCII with single inner spaces.
func isPlainASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == ' ' && (i == 0 || i == len(s)-1 || s[i-1] == ' ') {
			return false
		}
	}
	return true
}

// reservedForAgents reports whether identity falls in the agent- namespace once compatibility
// forms and case are folded away (NFKC, then case folding), so that AGENT-x and fullwidth
// ａｇｅｎｔ-x, which look like agent-x in a UI, are reserved too.
func reservedForAgents(identity string) bool {
	if isPlainASCII(identity) { // the common case, without the two allocations below
		return len(identity) >= len(AgentPrefix) && strings.EqualFold(identity[:len(AgentPrefix)], AgentPrefix)
	}
	return strings.HasPrefix(cases.Fold().String(norm.NFKC.String(identity)), AgentPrefix)
}

func checkMetadata(metadata string) error {
	if len(metadata) > MaxMetadataBytes {
		return invalidf("metadata", "must be at most %d bytes", MaxMetadataBytes)
	}
	if !utf8.ValidString(metadata) {
		return invalidf("metadata", "must be valid UTF-8")
	}
	return nil
}

// ttl resolves ttl_seconds against the configured default and maximum. Nothing is silently
// changed: a value out of range is an error that states the range.
func ttl(requested *int64, defaultTTL, maxTTL time.Duration) (time.Duration, error) {
	if requested == nil {
		return defaultTTL, nil
	}
	maxSeconds := int64(maxTTL / time.Second)
	if *requested < 1 || *requested > maxSeconds {
		return 0, invalidf("ttl_seconds", "must be a whole number of seconds from 1 to %d", maxSeconds)
	}
	return time.Duration(*requested) * time.Second, nil
}

func checkAgentID(id string) error {
	if id == "" {
		return invalidf("agent_id", "is required")
	}
	if len(id) > maxAgentIDLen {
		return invalidf("agent_id", "must be at most %d characters", maxAgentIDLen)
	}
	for _, r := range id {
		if !(r < utf8.RuneSelf && (r == '-' || r == '_' || r == '.' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z')) {
			return invalidf("agent_id", "must contain only letters, digits, '-', '_' and '.'")
		}
	}
	return nil
}

func (r *JoinRequest) validate() error {
	if err := checkIdentifier("room", r.Room, true); err != nil {
		return err
	}
	if err := checkName("identity", r.Identity, true); err != nil {
		return err
	}
	// LiveKit disconnects the older of two participants with one identity, so a user holding an
	// agent's identity could kick the agent out of the room.
	if reservedForAgents(r.Identity) {
		return invalidf("identity", "must not begin with %q in any case or width, which is reserved for agent tokens", AgentPrefix)
	}
	if err := checkIdentifier("identity", r.Identity, true); err != nil {
		return err
	}
	if err := checkDisplayName("name", r.Name); err != nil {
		return err
	}
	if err := checkMetadata(r.Metadata); err != nil {
		return err
	}
	if err := checkAttributes(r.Attributes); err != nil {
		return err
	}
	return checkPublishSources(r.Grants.CanPublishSources)
}

func (r *AgentRequest) validate() error {
	if err := checkIdentifier("room", r.Room, true); err != nil {
		return err
	}
	if err := checkAgentID(r.AgentID); err != nil {
		return err
	}
	if err := checkDisplayName("name", r.Name); err != nil {
		return err
	}
	if err := checkMetadata(r.Metadata); err != nil {
		return err
	}
	if r.Kind != "" && r.Kind != "agent" && r.Kind != "bridge" {
		return invalidf("kind", "must be agent or bridge")
	}
	return checkAttributes(r.Attributes)
}

// MaxAttributesBytes is LiveKit's own limit on a participant's attributes, keys plus values.
const MaxAttributesBytes = 64 << 10

// publishSources are the sources grants.canPublishSources may name, as LiveKit spells them.
var publishSources = []string{"camera", "microphone", "screen_share", "screen_share_audio"}

func checkAttributes(attributes map[string]string) error {
	size := 0
	for k, v := range attributes {
		if k == "" {
			return invalidf("attributes", "must not have an empty key")
		}
		size += len(k) + len(v)
	}
	if size > MaxAttributesBytes {
		return invalidf("attributes", "must be at most %d bytes of keys and values", MaxAttributesBytes)
	}
	return nil
}

func checkPublishSources(sources []string) error {
	for _, s := range sources {
		if !slices.Contains(publishSources, s) {
			return invalidf("grants.canPublishSources", "may only name camera, microphone, screen_share and screen_share_audio")
		}
	}
	return nil
}

// ReservedAttribute reports whether an attribute key is in one of LiveKit's reserved namespaces
// (lk., sip.), which LiveKit and its agents read as facts about a participant (lk.agent_name,
// sip.phoneNumber): only a backend may set them.
func ReservedAttribute(key string) bool {
	return strings.HasPrefix(key, "lk.") || strings.HasPrefix(key, "sip.")
}

// CheckFilled applies the request rules to values the policy filled in from an end user's
// claims, which no request rule has seen.
func CheckFilled(name, metadata string, attributes map[string]string) error {
	if err := checkDisplayName("name", name); err != nil {
		return err
	}
	if err := checkMetadata(metadata); err != nil {
		return err
	}
	return checkAttributes(attributes)
}

// CheckPublishSources is the rule for a canPublishSources list, for the policy's profiles too.
func CheckPublishSources(sources []string) error { return checkPublishSources(sources) }

// CheckIdentifier is the rule for a room or an identity, for the bans that name them too.
func CheckIdentifier(field, value string, required bool) error {
	return checkIdentifier(field, value, required)
}
