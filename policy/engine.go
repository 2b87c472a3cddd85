package policy

import (
	"fmt"
	"os"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/livekit/protocol/livekit"

	"github.com/token-service/token-service/config"
	"github.com/token-service/token-service/token"
)

// Settings are what the policy needs of the configuration.
type Settings struct {
	File string // POLICY_FILE; empty for the built-in default
	// Open leaves the backend endpoints and privileged grants to every caller, as on a laptop:
	// development or test with no service keys, where the environment was chosen (or the
	// credentials are livekit-server --dev's).
	Open          bool
	ServiceKeys   bool     // SERVICE_API_KEYS is set
	UserAuth      bool     // end-user JWTs are verified
	AllowedAgents []string // ALLOWED_AGENT_NAMES: agents any participant may dispatch (default policy)
	DefaultTTL    time.Duration
	MaxTTL        time.Duration
}

// SettingsFrom reads the policy's settings from the configuration. Openness is decided here and
// nowhere else.
func SettingsFrom(cfg config.Config) Settings {
	serviceKeys := len(cfg.ServiceKeys()) > 0
	undecided := cfg.EnvUnset && !cfg.DevCredentials()
	return Settings{
		File:          cfg.PolicyFile,
		Open:          !cfg.Production() && !serviceKeys && !undecided,
		ServiceKeys:   serviceKeys,
		UserAuth:      cfg.UserAuth(),
		AllowedAgents: cfg.AllowedAgents(),
		DefaultTTL:    cfg.DefaultTTL(),
		MaxTTL:        cfg.MaxTTL(),
	}
}

// Warnings are what an operator should read at start-up about who may ask for what.
func Warnings(cfg config.Config) []string {
	s := SettingsFrom(cfg)
	var w []string
	switch {
	case cfg.EnvUnset && !cfg.DevCredentials():
		w = append(w, "APP_ENV and NODE_ENV are unset and the LiveKit credentials are not livekit-server --dev's: backend endpoints and privileged grants stay closed, as in production; set APP_ENV=production (or development, to open them)")
	case cfg.AppEnv == config.Development && !cfg.EnvUnset && !cfg.DevCredentials() && s.Open:
		w = append(w, "APP_ENV=development with real LiveKit credentials: /token/agent, /token/verify and privileged grants are open to anyone who can reach the service")
	}
	if cfg.Production() && !s.ServiceKeys {
		w = append(w, "SERVICE_API_KEYS is unset: /token/agent, /token/verify and privileged grants are refused (403) in production")
	}
	if cfg.Production() && s.File == "" && !s.UserAuth {
		w = append(w, "no POLICY_FILE and no end-user authentication: any caller may ask for a participant token for any room and identity")
	}
	return w
}

// Engine decides with the current policy; Reload swaps in a new one atomically. It implements
// token.Decider and is safe for concurrent use.
type Engine struct {
	s       Settings
	current atomic.Pointer[Policy]
}

// New loads the policy the settings name (the file, or the built-in default) and returns an
// engine deciding with it. A file with problems is an error listing all of them.
func New(s Settings) (*Engine, error) {
	e := &Engine{s: s}
	p, err := e.load()
	if err != nil {
		return nil, err
	}
	e.current.Store(p)
	return e, nil
}

// Reload reads the policy file again. An invalid file changes nothing: the old policy stays.
// Without a file there is nothing to reload.
func (e *Engine) Reload() (*Policy, error) {
	if e.s.File == "" {
		return e.current.Load(), nil
	}
	p, err := e.load()
	if err != nil {
		return nil, err
	}
	e.current.Store(p)
	return p, nil
}

// Current is the policy in use.
func (e *Engine) Current() *Policy { return e.current.Load() }

func (e *Engine) load() (*Policy, error) {
	if e.s.File == "" {
		return Parse("built-in default", DefaultText(e.s))
	}
	return Load(e.s.File)
}

// Load reads and parses one policy file.
func Load(path string) (*Policy, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, Problems{fmt.Sprintf("%s: cannot read: %v", path, unwrapPathError(err))}
	}
	if len(data) > maxFileBytes {
		return nil, Problems{path + ": a policy file may be at most 1 MiB"}
	}
	return Parse(path, data)
}

const maxFileBytes = 1 << 20

func unwrapPathError(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}

func (e *Engine) limits() limits { return limits{defaultTTL: e.s.DefaultTTL, maxTTL: e.s.MaxTTL} }

func (e *Engine) backend() backendAccess {
	return backendAccess{serviceKeys: e.s.ServiceKeys, userAuth: e.s.UserAuth}
}

type backendAccess struct{ serviceKeys, userAuth bool }

// Participant implements token.Decider.
func (e *Engine) Participant(c token.Caller, req *token.JoinRequest, roomConfig *livekit.RoomConfiguration) (token.Grant, error) {
	return e.current.Load().Participant(c, req, roomConfig, e.limits(), e.backend())
}

// Agent implements token.Decider.
func (e *Engine) Agent(c token.Caller, req *token.AgentRequest) (token.Grant, error) {
	return e.current.Load().Agent(c, req, e.limits(), e.backend())
}

// Backend implements token.Decider: the backend-only endpoints (/token/verify and the ones that
// moderate) are for services; open only where the whole service is (Settings.Open).
func (e *Engine) Backend(c token.Caller) error {
	switch {
	case c.Service, e.s.Open:
		return nil
	case e.s.ServiceKeys:
		return token.ErrUnauthenticated
	}
	return &token.Forbidden{Reason: "this endpoint needs a service API key, and SERVICE_API_KEYS is unset"}
}

// Participant decides a join with this policy.
func (p *Policy) Participant(c token.Caller, req *token.JoinRequest, roomConfig *livekit.RoomConfiguration, lim limits, b backendAccess) (token.Grant, error) {
	r := request{tokenKind: participantToken, room: req.Room, identity: req.Identity, name: req.Name, metadata: req.Metadata,
		attributes: req.Attributes, ttlSeconds: req.TTLSeconds, grants: &req.Grants, roomConfig: roomConfig}
	return p.decide(c, &r, lim, b)
}

// Agent decides an agent token with this policy.
func (p *Policy) Agent(c token.Caller, req *token.AgentRequest, lim limits, b backendAccess) (token.Grant, error) {
	r := request{tokenKind: agentToken, room: req.Room, identity: token.AgentPrefix + req.AgentID, name: req.Name,
		metadata: req.Metadata, attributes: req.Attributes, ttlSeconds: req.TTLSeconds, agent: req}
	return p.decide(c, &r, lim, b)
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
