package token

import (
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
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
	if err := checkName("room", r.Room, true); err != nil {
		return err
	}
	if err := checkName("identity", r.Identity, true); err != nil {
		return err
	}
	// LiveKit disconnects the older of two participants with one identity, so a user holding an
	// agent's identity could kick the agent out of the room.
	if strings.HasPrefix(r.Identity, AgentPrefix) {
		return invalidf("identity", "must not begin with %q, which is reserved for agent tokens", AgentPrefix)
	}
	if err := checkName("name", r.Name, false); err != nil {
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
	if err := checkName("room", r.Room, true); err != nil {
		return err
	}
	if err := checkAgentID(r.AgentID); err != nil {
		return err
	}
	if err := checkName("name", r.Name, false); err != nil {
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
