package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	"github.com/livekit/protocol/livekit"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/token-service/token-service/authn"
	"github.com/token-service/token-service/config"
	"github.com/token-service/token-service/handlers"
	"github.com/token-service/token-service/internal/app"
	"github.com/token-service/token-service/issuance"
	"github.com/token-service/token-service/policy"
	"github.com/token-service/token-service/token"
)

const policyUsage = `usage:
  token-service policy check FILE      validate a policy file (exit 0, or 2 with every problem)
  token-service policy default         print the built-in policy for this environment
  token-service policy explain FILE    read {"endpoint", "caller", "claims", "request"} on stdin
      [-endpoint /token] [-caller anonymous|user|service] [-claims JSON] [-request JSON]
                                       and print the rule, the profile and the token's grants
                                       (exit 0 granted, 1 refused, 2 bad input)`

// policyCommand runs `token-service policy ...` and returns the exit status.
func policyCommand(args, environ []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, policyUsage)
		return 2
	}
	cfg, err := config.Load(environ)
	if err != nil {
		fmt.Fprintln(stderr, "token-service:", err)
		return 2
	}
	settings := app.PolicySettings(cfg)
	switch {
	case args[0] == "default" && len(args) == 1:
		settings.File = ""
		_, _ = stdout.Write(policy.DefaultText(settings))
		return 0
	case args[0] == "check" && len(args) == 2:
		// Checked as start-up would check it in this environment (SERVICE_API_KEYS matters).
		p, err := policy.Load(args[1], policy.Options{ServiceKeys: settings.ServiceKeys})
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 2
		}
		for _, w := range p.Warnings {
			fmt.Fprintln(stderr, "warning:", w)
		}
		fmt.Fprintf(stdout, "%s: valid\n", p.Source)
		return 0
	case args[0] == "explain" && len(args) >= 2:
		settings.File = args[1]
		return explain(cfg, settings, args[2:], stdin, stdout, stderr)
	}
	fmt.Fprintln(stderr, policyUsage)
	return 2
}

// explainInput is one request to explain: as the endpoint would receive it, from this caller.
type explainInput struct {
	Endpoint string         `json:"endpoint"` // /token (default), /token/agent or /connection-details
	Caller   string         `json:"caller"`   // anonymous (default), user or service
	Claims   map[string]any `json:"claims"`   // the end user's verified claims, for caller user
	Request  jsontext.Value `json:"request"`  // the request body
}

// explanation is what explain prints: the decision and the token it would sign.
type explanation struct {
	Rule       string            `json:"rule"`
	Profile    string            `json:"profile"`
	Identity   string            `json:"identity"`
	Room       string            `json:"room"`
	Name       string            `json:"name"`
	Metadata   string            `json:"metadata"`
	Attributes map[string]string `json:"attributes"`
	Kind       string            `json:"kind"`
	TTLSeconds int64             `json:"ttl_seconds"`
	Grants     any               `json:"grants"`
	RoomConfig jsontext.Value    `json:"room_config,omitzero"`
}

// refusedReply is what explain prints for a refusal: the status and body the server answers.
type refusedReply struct {
	Refused struct {
		Status  int    `json:"status"`
		Error   string `json:"error"`
		Field   string `json:"field,omitzero"`
		Message string `json:"message"`
	} `json:"refused"`
}

func explain(cfg config.Config, settings policy.Settings, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	in, err := explainArgs(args, stdin, stderr)
	if err != nil {
		if err != flag.ErrHelp {
			fmt.Fprintln(stderr, "token-service: policy explain:", err)
		}
		return 2
	}
	if in.Caller == "user" && !settings.UserAuth {
		// A server without end-user authentication never sees a user: explain as the
		// deployment that signs users in would decide, and say so.
		settings.UserAuth = true
		fmt.Fprintln(stderr, "note: explained as if end-user authentication (AUTH_JWKS_URL or AUTH_JWT_SECRET) were configured")
	}
	engine, err := policy.New(settings)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	var c token.Caller
	switch in.Caller {
	case "", "anonymous":
	case "service":
		c = token.Caller{Service: true}
	case "user":
		ua := cfg.UserAuth
		u, err := authn.Settings{IdentityClaim: ua.IdentityClaim, NameClaim: ua.NameClaim, RoomsClaim: ua.RoomsClaim}.User(in.Claims)
		if err != nil {
			fmt.Fprintln(stderr, "token-service: policy explain: claims:", err)
			return 2
		}
		c = token.Caller{User: u}
	default:
		fmt.Fprintln(stderr, "token-service: policy explain: caller must be anonymous, user or service")
		return 2
	}
	body := []byte(in.Request)
	if len(body) == 0 {
		body = []byte("{}")
	}
	g, err := plan(issuance.New(issuance.Deps{Policy: engine, Limits: token.Limits{MaxTTL: cfg.MaxTTL}}), c, in.Endpoint, body)
	if err == errUnknownEndpoint {
		fmt.Fprintln(stderr, "token-service: policy explain: endpoint must be /token, /token/agent or /connection-details")
		return 2
	}
	if err != nil {
		refusal, ok := handlers.RefusalOf(err)
		if !ok {
			fmt.Fprintln(stderr, "token-service: policy explain: request:", err)
			return 2
		}
		var out refusedReply
		out.Refused.Status, out.Refused.Error, out.Refused.Field, out.Refused.Message = refusal.Status, refusal.Code, refusal.Field, refusal.Message
		writeJSON(stdout, out)
		return 1
	}
	out := explanation{Rule: g.Rule, Profile: g.Profile, Identity: g.Identity, Room: g.Room, Name: g.Name, Metadata: g.Metadata,
		Attributes: g.Attributes, Kind: kindName(g.Kind), TTLSeconds: int64(g.TTL.Seconds()), Grants: g.VideoGrant()}
	if g.RoomConfig != nil {
		out.RoomConfig, _ = protojson.MarshalOptions{UseProtoNames: true}.Marshal(g.RoomConfig)
	}
	writeJSON(stdout, out)
	return 0
}

var errUnknownEndpoint = fmt.Errorf("unknown endpoint")

// plan is the server's pass up to the decision, for one endpoint: admission, the body decoded as
// the router decodes it, Validate and the policy, through the very functions the server runs.
func plan(svc *issuance.Service, c token.Caller, endpoint string, body []byte) (token.Grant, error) {
	switch endpoint {
	case "", "/token", "/connection-details":
		if err := svc.Admit(c, policy.Participant); err != nil {
			return token.Grant{}, err
		}
		var req token.JoinRequest
		if endpoint == "/connection-details" {
			tsr, err := handlers.DecodeTokenSource(body)
			if err != nil {
				return token.Grant{}, err
			}
			req = token.JoinFromTokenSource(tsr, c.SignedIn() != nil)
		} else {
			var err error
			if req, err = handlers.DecodeRequest[token.JoinRequest](body); err != nil {
				return token.Grant{}, err
			}
		}
		return svc.PlanJoin(c, &req)
	case "/token/agent":
		if err := svc.Admit(c, policy.Agent); err != nil {
			return token.Grant{}, err
		}
		req, err := handlers.DecodeRequest[token.AgentRequest](body)
		if err != nil {
			return token.Grant{}, err
		}
		return svc.PlanAgent(c, &req)
	}
	return token.Grant{}, errUnknownEndpoint
}

// explainArgs reads explain's input from stdin, or from its flags.
func explainArgs(args []string, stdin io.Reader, stderr io.Writer) (explainInput, error) {
	flags := flag.NewFlagSet("policy explain", flag.ContinueOnError)
	flags.SetOutput(stderr)
	endpoint := flags.String("endpoint", "", "/token, /token/agent or /connection-details")
	caller := flags.String("caller", "", "anonymous, user or service")
	claims := flags.String("claims", "", "the end user's claims, as JSON")
	request := flags.String("request", "", "the request body, as JSON (otherwise the whole input is read from stdin)")
	var in explainInput
	if err := flags.Parse(args); err != nil {
		return in, flag.ErrHelp
	}
	if *request == "" {
		data, err := io.ReadAll(io.LimitReader(stdin, 1<<20))
		if err == nil {
			err = json.Unmarshal(data, &in, json.RejectUnknownMembers(true))
		}
		if err != nil {
			return in, fmt.Errorf("stdin: %w", err)
		}
	} else {
		in.Request = jsontext.Value(*request)
	}
	if *endpoint != "" {
		in.Endpoint = *endpoint
	}
	if *caller != "" {
		in.Caller = *caller
	}
	if *claims != "" {
		in.Claims = nil
		if err := json.Unmarshal([]byte(*claims), &in.Claims); err != nil {
			return in, fmt.Errorf("-claims: %w", err)
		}
	}
	return in, nil
}

func kindName(k livekit.ParticipantInfo_Kind) string {
	return string(bytes.ToLower([]byte(k.String())))
}

func writeJSON(w io.Writer, v any) {
	data, _ := json.Marshal(v, jsontext.WithIndent("  "))
	_, _ = w.Write(append(data, '\n'))
}
