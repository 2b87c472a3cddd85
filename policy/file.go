// Package policy is the one place that decides who may ask for what: which rule a caller and its
// request match, the profile that rule chooses, and so the exact grants a token carries. The
// operator writes it in a YAML file (POLICY_FILE); without one a built-in default, written in
// the same format, keeps the contract's behaviour. authn only says who the caller is.
package policy

import (
	"fmt"

	"go.yaml.in/yaml/v3"
)

// document is a policy file as written.
type document struct {
	Version  int                 `yaml:"version"`
	Profiles map[string]*profile `yaml:"profiles"`
	Rules    []*ruleSpec         `yaml:"rules"`
}

// profile is what a token chosen by a rule may carry, and what its caller may still choose.
type profile struct {
	Kind          string    `yaml:"kind"`
	MaxTTLSeconds int64     `yaml:"max_ttl_seconds"`
	Grants        grantSpec `yaml:"grants"`
	CallerMay     mayChoose `yaml:"caller_may"`
	Fixed         fixed     `yaml:"fixed"`
}

// grantSpec is every VideoGrant permission, by LiveKit's claim names: the value the token
// carries unless the caller may change it and does. A permission left out is off.
type grantSpec struct {
	RoomCreate            bool     `yaml:"roomCreate"`
	RoomList              bool     `yaml:"roomList"`
	RoomRecord            bool     `yaml:"roomRecord"`
	RoomAdmin             bool     `yaml:"roomAdmin"`
	CanPublish            bool     `yaml:"canPublish"`
	CanSubscribe          bool     `yaml:"canSubscribe"`
	CanPublishData        bool     `yaml:"canPublishData"`
	CanUpdateOwnMetadata  bool     `yaml:"canUpdateOwnMetadata"`
	IngressAdmin          bool     `yaml:"ingressAdmin"`
	Hidden                bool     `yaml:"hidden"`
	Recorder              bool     `yaml:"recorder"`
	Agent                 bool     `yaml:"agent"`
	CanSubscribeMetrics   bool     `yaml:"canSubscribeMetrics"`
	CanManageAgentSession bool     `yaml:"canManageAgentSession"`
	CanPublishSources     []string `yaml:"canPublishSources"`
}

// mayChoose is what the caller may still choose inside the profile.
type mayChoose struct {
	Grants     []string `yaml:"grants"`      // permissions it may turn on or off; "*" for all
	Kinds      []string `yaml:"kinds"`       // for agent tokens: kinds it may ask for instead of the profile's
	Name       bool     `yaml:"name"`        // its display name
	Metadata   bool     `yaml:"metadata"`    // its metadata
	Attributes []string `yaml:"attributes"`  // attribute keys: exact, "prefix.*", or "*"
	RoomConfig []string `yaml:"room_config"` // RoomConfiguration fields by proto name; "*" for all
	Agents     []string `yaml:"agents"`      // agent names it may dispatch in room_config; "*" for all
}

// fixed are values the caller cannot choose, from literals and {claims.x} placeholders.
type fixed struct {
	Name       string            `yaml:"name"`
	Metadata   map[string]string `yaml:"metadata"` // written as one JSON object
	Attributes map[string]string `yaml:"attributes"`
}

// ruleSpec chooses a profile: the first rule whose caller, token, condition and rooms all match.
type ruleSpec struct {
	Name    string     `yaml:"name"`
	Caller  stringList `yaml:"caller"` // anonymous, user, service; empty for any
	Token   string     `yaml:"token"`  // participant (default: /token, /connection-details) or agent (/token/agent)
	When    string     `yaml:"when"`   // a CEL expression over claims, request and caller
	Rooms   []string   `yaml:"rooms"`  // room patterns: * matches any run of characters, {claims.x} a claim
	Profile string     `yaml:"profile"`
}

// stringList is a YAML string or list of strings.
type stringList []string

func (l *stringList) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		*l = stringList{n.Value}
		return nil
	case yaml.SequenceNode:
		var list []string
		if err := n.Decode(&list); err != nil {
			return err
		}
		*l = list
		return nil
	}
	return fmt.Errorf("line %d: must be a string or a list of strings", n.Line)
}
