package policy

import (
	"strconv"
	"strings"
)

// DefaultText is the built-in policy for these settings, in the same format as a POLICY_FILE.
// What it opens depends on the configuration, so it is written from it; `token-service policy
// default` prints the result. (Plain strings, not text/template: a template's reflective method
// calls make the linker keep every exported method of the binary, 11 MB of it.)
func DefaultText(s Settings) []byte {
	var b strings.Builder
	line := func(parts ...string) {
		for _, p := range parts {
			b.WriteString(p)
		}
		b.WriteByte('\n')
	}
	line("# token-service's built-in policy: what applies when POLICY_FILE is unset.")
	line("# Rendered for this configuration: open=", strconv.FormatBool(s.Open), " (every caller gets what a backend may ask for,")
	line("# as on a laptop: development without SERVICE_API_KEYS), end-user authentication=", strconv.FormatBool(s.UserAuth), ".")
	b.WriteString(defaultProfilesHead)
	line("      grants: [canPublish, canSubscribe, canPublishData, canUpdateOwnMetadata, canPublishSources, canSubscribeMetrics]")
	line("      name: true")
	line("      metadata: true")
	line(`      attributes: ["*"]`)
	if len(s.AllowedAgents) > 0 {
		quoted := make([]string, len(s.AllowedAgents))
		for i, a := range s.AllowedAgents {
			quoted[i] = strconv.Quote(a)
		}
		line("      room_config: [agents]")
		line("      agents: [", strings.Join(quoted, ", "), "]")
	}
	b.WriteString(defaultAgentProfileAndBackendRules)
	if s.Open {
		line("  - name: open-agents")
		line("    caller: anonymous")
		line("    token: agent")
		line("    profile: agent")
	}
	callers, profile := "[anonymous, user]", "participant"
	if s.UserAuth {
		callers = "user"
	}
	if s.Open { // open means open: what LiveKit's starter apps ask for, agents included, just works
		profile = "backend"
	}
	line("  - name: participants")
	line("    caller: ", callers)
	line("    profile: ", profile)
	return []byte(b.String())
}

const defaultProfilesHead = `version: 1

profiles:
  # A backend with a service API key: anything LiveKit allows.
  backend:
    grants: {canPublish: true, canSubscribe: true, canPublishData: true}
    caller_may:
      grants: ["*"]
      name: true
      metadata: true
      attributes: ["*"]
      room_config: ["*"]
      agents: ["*"]

  # Everyone else: the contract's participant grants, which the caller may switch; no
  # room_config apart from dispatching the agents of ALLOWED_AGENT_NAMES, and no lk. or sip.
  # attribute (only a service may set those, whatever a profile says).
  participant:
    grants: {canPublish: true, canSubscribe: true, canPublishData: true}
    caller_may:
`

const defaultAgentProfileAndBackendRules = `
  # POST /token/agent: a server-side participant such as the Media Bridge.
  agent:
    kind: agent
    grants: {canPublish: true, canSubscribe: true, canPublishData: true, canUpdateOwnMetadata: true}
    caller_may:
      grants: [agent]
      kinds: [bridge]
      name: true
      metadata: true
      attributes: ["*"]

rules:
  - name: backends
    caller: service
    profile: backend
  - name: backend-agents
    caller: service
    token: agent
    profile: agent
`
