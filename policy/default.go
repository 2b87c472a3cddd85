package policy

import (
	"bytes"
	"strconv"
	"strings"
	texttemplate "text/template"
)

// defaultPolicy is the built-in policy, in the same format as a POLICY_FILE. What it opens
// depends on the configuration, so it is rendered from it; `token-service policy default`
// prints the result.
var defaultPolicy = texttemplate.Must(texttemplate.New("default").Parse(`# token-service's built-in policy: what applies when POLICY_FILE is unset.
# Rendered for this configuration: open={{.Open}} (backend endpoints and privileged grants open
# to every caller: development or test without SERVICE_API_KEYS), end-user authentication={{.UserAuth}}.
version: 1

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
      grants: [canPublish, canSubscribe, canPublishData, canUpdateOwnMetadata, canPublishSources, canSubscribeMetrics{{if and .Open (not .UserAuth)}}, hidden, agent{{end}}]
      name: true
      metadata: true
      attributes: ["*"]
{{- if .Agents}}
      room_config: [agents]
      agents: [{{.Agents}}]
{{- end}}

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
{{- if .Open}}
  - name: open-agents
    caller: anonymous
    token: agent
    profile: agent
{{- end}}
  - name: participants
    caller: {{if .UserAuth}}user{{else}}[anonymous, user]{{end}}
    profile: participant
`))

// DefaultText is the built-in policy for these settings.
func DefaultText(s Settings) []byte {
	quoted := make([]string, len(s.AllowedAgents))
	for i, a := range s.AllowedAgents {
		quoted[i] = strconv.Quote(a)
	}
	var b bytes.Buffer
	_ = defaultPolicy.Execute(&b, struct {
		Open, UserAuth bool
		Agents         string
	}{s.Open, s.UserAuth, strings.Join(quoted, ", ")})
	return b.Bytes()
}
