// Package issuance runs the one pass every token request takes, each step once and in order:
// the caller was identified (authn) and admitted (Admit: could any rule admit it at all, else
// 401) before its body was decoded; then Validate (package token: every 400), the decision
// (package policy: every 401 and 403, bans included), Sign (package token) and, for a join
// whose room configuration names agents, Ensure (package dispatch). policy explain runs the
// same Plan functions, so it cannot disagree with the server.
package issuance

import (
	"context"

	"github.com/livekit/protocol/livekit"

	"github.com/token-service/token-service/policy"
	"github.com/token-service/token-service/token"
)

// Dispatcher makes sure the agents a join dispatches are dispatched (package dispatch).
type Dispatcher interface {
	Ensure(ctx context.Context, room string, agents []*livekit.RoomAgentDispatch) ([]token.Dispatch, *bool)
}

// Recorder hears what was issued and verified, for metrics.
type Recorder interface {
	Issued(tokenType string) // "participant", "agent", "connection_details"
	Verified(result string)  // "valid" or the refusal reason
}

// Deps are what a Service runs with. Only Policy is needed to plan (policy explain); issuing
// needs Issuer too.
type Deps struct {
	Policy     *policy.Engine
	Issuer     *token.Issuer
	Limits     token.Limits
	Bans       policy.Bans // nil: nobody is banned
	Dispatcher Dispatcher  // nil: agents are left to the token
	Recorder   Recorder    // nil: nothing is recorded
}

// Service issues and verifies tokens. It is safe for concurrent use.
type Service struct{ d Deps }

// New returns a Service.
func New(d Deps) *Service {
	if d.Recorder == nil {
		d.Recorder = noRecorder{}
	}
	return &Service{d: d}
}

type noRecorder struct{}

func (noRecorder) Issued(string)   {}
func (noRecorder) Verified(string) {}

// Admit answers, before a body is read, whether the caller could be admitted to ep at all.
func (s *Service) Admit(c token.Caller, ep policy.Endpoint) error { return s.d.Policy.Admit(c, ep) }

// PlanJoin validates a join and decides it: the grant Join would sign, signing nothing.
func (s *Service) PlanJoin(c token.Caller, req *token.JoinRequest) (token.Grant, error) {
	if err := req.Validate(s.d.Limits, c.SignedIn()); err != nil {
		return token.Grant{}, err
	}
	return s.d.Policy.Join(c, req, s.d.Bans)
}

// Join issues a participant token (POST /token).
func (s *Service) Join(ctx context.Context, c token.Caller, req token.JoinRequest) (token.Issued, error) {
	issued, err := s.join(ctx, c, &req, "participant")
	return issued.Issued, err
}

// ConnectionDetails issues a participant token for LiveKit's TokenSource request (POST
// /connection-details), with the same rules and policy as Join.
func (s *Service) ConnectionDetails(ctx context.Context, c token.Caller, req *livekit.TokenSourceRequest) (token.ConnectionDetails, error) {
	join := token.JoinFromTokenSource(req, c.SignedIn() != nil)
	issued, err := s.join(ctx, c, &join, "connection_details")
	if err != nil {
		return token.ConnectionDetails{}, err
	}
	return token.ConnectionDetails{ServerURL: issued.WSURL, ParticipantToken: issued.Token, RoomName: issued.Room,
		ParticipantName: issued.name, AgentDispatch: issued.AgentDispatch}, nil
}

type issuedJoin struct {
	token.Issued
	name string
}

func (s *Service) join(ctx context.Context, c token.Caller, req *token.JoinRequest, tokenType string) (issuedJoin, error) {
	g, err := s.PlanJoin(c, req)
	if err != nil {
		return issuedJoin{}, err
	}
	issued, err := s.d.Issuer.Sign(&g)
	if err != nil {
		return issuedJoin{}, err
	}
	s.d.Recorder.Issued(tokenType)
	if agents := g.RoomConfig.GetAgents(); len(agents) > 0 && s.d.Dispatcher != nil {
		// A token without agents makes no call to LiveKit.
		issued.Dispatches, issued.RoomConfigApplied = s.d.Dispatcher.Ensure(ctx, g.Room, agents)
	}
	return issuedJoin{Issued: issued, name: g.Name}, nil
}

// PlanAgent validates an agent token's request and decides it, signing nothing.
func (s *Service) PlanAgent(c token.Caller, req *token.AgentRequest) (token.Grant, error) {
	if err := req.Validate(s.d.Limits); err != nil {
		return token.Grant{}, err
	}
	return s.d.Policy.Agent(c, req, s.d.Bans)
}

// Agent issues a token for a server-side participant such as the Media Bridge (POST /token/agent).
func (s *Service) Agent(_ context.Context, c token.Caller, req token.AgentRequest) (token.Issued, error) {
	g, err := s.PlanAgent(c, &req)
	if err != nil {
		return token.Issued{}, err
	}
	issued, err := s.d.Issuer.Sign(&g)
	if err != nil {
		return token.Issued{}, err
	}
	s.d.Recorder.Issued("agent")
	return issued, nil
}

// Verify says whether a token is one LiveKit would accept, what it grants, and whether its
// identity is banned from its room (POST /token/verify, admitted as a backend endpoint).
func (s *Service) Verify(req token.VerifyRequest) (token.Verification, error) {
	if err := req.Validate(); err != nil {
		return token.Verification{}, err
	}
	v := s.d.Issuer.Verify(req.Token)
	if !v.Valid {
		s.d.Recorder.Verified(v.Reason)
		return v, nil
	}
	v.Banned = s.d.Bans != nil && s.d.Bans.Banned(v.Room, v.Identity)
	s.d.Recorder.Verified("valid")
	return v, nil
}
