package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	"github.com/livekit/protocol/livekit"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/token-service/token-service/authn"
	"github.com/token-service/token-service/config"
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
	settings := policy.SettingsFrom(cfg)
	switch {
	case args[0] == "default" && len(args) == 1:
		settings.File = ""
		_, _ = stdout.Write(policy.DefaultText(settings))
		return 0
	case args[0] == "check" && len(args) == 2:
		p, err := policy.Load(args[1])
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 2
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

func explain(cfg config.Config, settings policy.Settings, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	flags := flag.NewFlagSet("policy explain", flag.ContinueOnError)
	flags.SetOutput(stderr)
	endpoint := flags.String("endpoint", "", "/token, /token/agent or /connection-details")
	caller := flags.String("caller", "", "anonymous, user or service")
	claims := flags.String("claims", "", "the end user's claims, as JSON")
	request := flags.String("request", "", "the request body, as JSON (otherwise the whole input is read from stdin)")
	if err := flags.Parse(args); err != nil {
		return 2
	}
	var in explainInput
	if *request == "" {
		data, err := io.ReadAll(io.LimitReader(stdin, 1<<20))
		if err == nil {
			err = json.Unmarshal(data, &in, json.RejectUnknownMembers(true))
		}
		if err != nil {
			fmt.Fprintln(stderr, "token-service: policy explain: stdin:", err)
			return 2
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
			fmt.Fprintln(stderr, "token-service: policy explain: -claims:", err)
			return 2
		}
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
		u, err := authn.Settings{IdentityClaim: cfg.AuthIdentityClaim, NameClaim: cfg.AuthNameClaim, RoomsClaim: cfg.AuthRoomsClaim}.User(in.Claims)
		if err != nil {
			fmt.Fprintln(stderr, "token-service: policy explain: claims:", err)
			return 2
		}
		c = token.Caller{User: u}
	default:
		fmt.Fprintln(stderr, "token-service: policy explain: caller must be anonymous, user or service")
		return 2
	}
	issuer := token.NewIssuer(token.Settings{DefaultTTL: cfg.DefaultTTL(), MaxTTL: cfg.MaxTTL(), Decider: engine})
	body := []byte(in.Request)
	if len(body) == 0 {
		body = []byte("{}")
	}
	var g token.Grant
	switch in.Endpoint {
	case "", "/token":
		var req token.JoinRequest
		if err = json.Unmarshal(body, &req, json.RejectUnknownMembers(true)); err == nil {
			g, err = issuer.PlanJoin(c, req)
		}
	case "/token/agent":
		var req token.AgentRequest
		if err = json.Unmarshal(body, &req, json.RejectUnknownMembers(true)); err == nil {
			g, err = issuer.PlanAgent(c, req)
		}
	case "/connection-details":
		var req livekit.TokenSourceRequest
		if err = protojson.Unmarshal(body, &req); err == nil {
			g, err = issuer.PlanConnectionDetails(c, &req)
		}
	default:
		fmt.Fprintln(stderr, "token-service: policy explain: endpoint must be /token, /token/agent or /connection-details")
		return 2
	}
	if err != nil {
		var forbidden *token.Forbidden
		var invalid *token.Invalid
		switch {
		case errors.As(err, &forbidden):
			writeJSON(stdout, map[string]any{"refused": map[string]any{"status": 403, "error": "forbidden", "field": forbidden.Field, "message": forbidden.Reason}})
		case errors.As(err, &invalid):
			writeJSON(stdout, map[string]any{"refused": map[string]any{"status": 400, "error": "invalid_request", "field": invalid.Field, "message": invalid.Error()}})
		case errors.Is(err, token.ErrUnauthenticated):
			writeJSON(stdout, map[string]any{"refused": map[string]any{"status": 401, "error": "unauthorized", "message": err.Error()}})
		default:
			fmt.Fprintln(stderr, "token-service: policy explain: request:", err)
			return 2
		}
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

func kindName(k livekit.ParticipantInfo_Kind) string {
	return string(bytes.ToLower([]byte(k.String())))
}

func writeJSON(w io.Writer, v any) {
	data, _ := json.Marshal(v, jsontext.WithIndent("  "))
	_, _ = w.Write(append(data, '\n'))
}
