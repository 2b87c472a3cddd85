package policy

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/token-service/token-service/token"
)

// Settings are what the policy needs to know of the configuration (internal/app fills them in).
type Settings struct {
	File string // POLICY_FILE; empty for the built-in default
	// Open leaves the backend endpoints and every grant to every caller, as on a laptop
	// (config decides when: development with no service keys).
	Open          bool
	ServiceKeys   bool     // SERVICE_API_KEYS is set
	UserAuth      bool     // end-user JWTs are verified
	AllowedAgents []string // ALLOWED_AGENT_NAMES: agents any participant may dispatch (default policy)
	DefaultTTL    time.Duration
	MaxTTL        time.Duration
}

// Endpoint is what a request asks for, as admission tells them apart.
type Endpoint int

// The endpoints: a participant token (POST /token, /connection-details), an agent token
// (POST /token/agent), or a backend-only endpoint (/token/verify, /moderation/bans).
const (
	Participant Endpoint = iota
	Agent
	Backend
)

// Bans says whether an identity is kept out of a room (package moderation): a ban holds
// whatever a rule would grant.
type Bans interface {
	Banned(room, identity string) bool
}

// Engine decides with the current policy; Reload swaps in a new one atomically. It is safe for
// concurrent use.
type Engine struct {
	s       Settings
	current atomic.Pointer[Policy]
}

// New loads the policy the settings name (the file, or the built-in default) and returns an
// engine deciding with it. A file with problems is an error listing all of them.
func New(s Settings) (*Engine, error) {
	e := &Engine{s: s}
	p, err := e.load(os.ReadFile)
	if err != nil {
		return nil, err
	}
	e.current.Store(p)
	return e, nil
}

// Reload reads the policy file again. A file with problems changes nothing (the old policy
// stays), and neither does one still being written: the file is read until two reads a moment
// apart agree, so that a half-written file that happens to parse (a rules: entry cut before
// its rooms:) is never applied. Without a file there is nothing to reload.
func (e *Engine) Reload() (*Policy, error) {
	if e.s.File == "" {
		return e.current.Load(), nil
	}
	p, err := e.load(settledRead)
	if err != nil {
		return nil, err
	}
	e.current.Store(p)
	return p, nil
}

// Current is the policy in use.
func (e *Engine) Current() *Policy { return e.current.Load() }

func (e *Engine) load(read func(string) ([]byte, error)) (*Policy, error) {
	opts := Options{ServiceKeys: e.s.ServiceKeys}
	if e.s.File == "" {
		return Parse("built-in default", DefaultText(e.s), opts)
	}
	return load(e.s.File, read, opts)
}

// Load reads and parses one policy file as the service would with opts.
func Load(path string, opts Options) (*Policy, error) { return load(path, os.ReadFile, opts) }

func load(path string, read func(string) ([]byte, error), opts Options) (*Policy, error) {
	data, err := read(path)
	if err != nil {
		return nil, Problems{fmt.Sprintf("%s: cannot read: %v", path, unwrapPathError(err))}
	}
	if len(data) > maxFileBytes {
		return nil, Problems{path + ": a policy file may be at most 1 MiB"}
	}
	return Parse(path, data, opts)
}

const maxFileBytes = 1 << 20

// settle is how far apart two reads of a reloaded file must agree, and settleTries how many
// times it is read before the reload gives up on a file that keeps changing.
const (
	settle      = 200 * time.Millisecond
	settleTries = 25
)

var errStillChanging = errors.New("the file kept changing while it was read (write a new file and rename it over the old one)")

func settledRead(path string) ([]byte, error) {
	last, err := os.ReadFile(path)
	for range settleTries {
		if err != nil {
			return nil, err
		}
		time.Sleep(settle)
		var next []byte
		next, err = os.ReadFile(path)
		if err == nil && bytes.Equal(next, last) {
			return next, nil
		}
		last = next
	}
	if err != nil {
		return nil, err
	}
	return nil, errStillChanging
}

func unwrapPathError(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}

// Admit is the first question of every request, before its body is read: could any rule admit
// this caller at all with the credentials it sent? Where only a kind of credential it did not
// bring could help (no JWT where end users must sign in, no key where only backends may ask),
// the answer is token.ErrUnauthenticated (401) whatever the body holds. For Participant and
// Agent nothing else is refused here (the request's own 400s come first, then the policy's
// 403s); the backend-only endpoints are decided here whole.
func (e *Engine) Admit(c token.Caller, ep Endpoint) error {
	if ep == Backend {
		switch {
		case c.Service, e.s.Open:
			return nil
		case e.s.ServiceKeys:
			return token.ErrUnauthenticated
		}
		return &token.Forbidden{Reason: "this endpoint needs a service API key, and SERVICE_API_KEYS is unset"}
	}
	p, kind, tk := e.current.Load(), kindOf(c), tokenKindOf(ep)
	if !p.accepts[tk][kind] && e.credentialsWouldHelp(p, tk, kind) {
		return token.ErrUnauthenticated
	}
	return nil
}

// credentialsWouldHelp is true when no rule for this token admits the caller's kind, but one
// admits a kind of caller the service can recognise.
func (e *Engine) credentialsWouldHelp(p *Policy, tk, kind int) bool {
	return e.s.ServiceKeys && kind != service && p.accepts[tk][service] ||
		e.s.UserAuth && kind == anonymous && p.accepts[tk][user]
}

func tokenKindOf(ep Endpoint) int {
	if ep == Agent {
		return agentToken
	}
	return participantToken
}

// Join decides a participant token (POST /token, /connection-details) for a request that
// passed token's Validate: every 401 and 403, or the grant to sign.
func (e *Engine) Join(c token.Caller, req *token.JoinRequest, bans Bans) (token.Grant, error) {
	r := request{tokenKind: participantToken, room: req.Room, identity: req.Identity, name: req.Name, metadata: req.Metadata,
		attributes: req.Attributes, ttlSeconds: req.TTLSeconds, grants: &req.Grants, roomConfig: req.RoomConfig.Config}
	return e.decide(c, &r, bans)
}

// Agent decides an agent token (POST /token/agent) for a request that passed Validate.
func (e *Engine) Agent(c token.Caller, req *token.AgentRequest, bans Bans) (token.Grant, error) {
	r := request{tokenKind: agentToken, room: req.Room, identity: req.Identity(), name: req.Name,
		metadata: req.Metadata, attributes: req.Attributes, ttlSeconds: req.TTLSeconds, agent: req}
	return e.decide(c, &r, bans)
}

func (e *Engine) decide(c token.Caller, r *request, bans Bans) (token.Grant, error) {
	g, err := e.current.Load().decide(c, r, e.s)
	if err != nil {
		return token.Grant{}, err
	}
	// A ban holds whatever the rule granted.
	if bans != nil && bans.Banned(g.Room, g.Identity) {
		return token.Grant{}, &token.Forbidden{Field: "identity", Reason: "identity is banned from this room"}
	}
	return g, nil
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
