package policy

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/google/cel-go/cel"
	"github.com/livekit/protocol/livekit"
	"go.yaml.in/yaml/v3"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/token-service/token-service/token"
)

// Caller kinds, as rules name them.
const (
	anonymous = iota
	user
	service
)

var callerNames = []string{"anonymous", "user", "service"}

// Token kinds a rule is for.
const (
	participantToken = iota // POST /token and /connection-details
	agentToken              // POST /token/agent
)

// Problems are everything wrong with a policy file, each as "file:line: what", in file order.
type Problems []string

func (p Problems) Error() string { return "invalid policy:\n  " + strings.Join(p, "\n  ") }

// Policy is a loaded, validated policy, ready to decide. It never changes once built.
type Policy struct {
	Source string // the file it came from, or "built-in default"
	// Warnings are what policy check and start-up print about a valid policy: things that
	// work, but probably not as meant.
	Warnings []string
	rules    []*rule
	// accepts says whether any rule for a token kind admits a caller kind at all, which tells a
	// refusal that credentials would cure (401) from one they would not (403).
	accepts [2][3]bool
}

type rule struct {
	name    string
	callers [3]bool
	token   int
	when    cel.Program
	rooms   []roomPattern
	profile *compiledProfile
}

type compiledProfile struct {
	name        string
	kind        livekit.ParticipantInfo_Kind
	maxTTL      time.Duration // 0: MAX_TOKEN_TTL_SECONDS
	grants      token.Permissions
	sources     []string // canPublishSources; nil: any source canPublish allows
	mayGrant    [len(permissions)]bool
	maySources  bool
	kinds       []livekit.ParticipantInfo_Kind
	mayName     bool
	mayMetadata bool
	attributes  []keyPattern
	roomConfig  map[string]bool // top-level RoomConfiguration fields by proto name; nil with allConfig
	allConfig   bool
	agents      map[string]bool
	allAgents   bool

	fixedName     *template
	fixedMetadata []fixedValue // in key order, so that the JSON is the same every time
	fixedAttrs    []fixedValue
}

type fixedValue struct {
	key   string
	value template
}

// maxRules and maxExpression bound what a policy may cost to evaluate per request;
// maxTTLSeconds is MAX_TOKEN_TTL_SECONDS' own bound.
const (
	maxTTLSeconds = 30 * 24 * 3600
	maxRules      = 1000
	maxExpression = 4096
	// celCostLimit bounds one condition's evaluation (CEL's own cost units): far above a
	// comparison of a few claims, far below anything that could hold a request up.
	celCostLimit = 10000
)

// Options are what Parse needs to know of the configuration the policy will run under.
type Options struct {
	// ServiceKeys is true when SERVICE_API_KEYS is set: backends can then be told from anyone
	// else, and a rule giving anonymous callers agent tokens is refused.
	ServiceKeys bool
}

// Parse validates a policy as a whole and compiles it. name is used in problems ("file:line").
// Every problem is reported at once, in file order: unknown keys and values of the wrong type do
// not stop the checks that follow them.
func Parse(name string, data []byte, opts Options) (*Policy, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, Problems{name + ": " + yamlMessage(err)}
	}
	c := &compiler{name: name, opts: opts, lines: lineIndex{root: &root}, pol: &Policy{Source: name},
		profiles: map[string]*compiledProfile{}, claimPatterns: map[string]string{}}
	var doc document
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&doc); err != nil {
		var typeErr *yaml.TypeError
		if !errors.As(err, &typeErr) {
			return nil, Problems{name + ": " + yamlMessage(err)}
		}
		// yaml.v3 decodes everything it can and lists the rest: keep checking.
		for _, e := range typeErr.Errors {
			line, msg, _ := strings.Cut(strings.TrimPrefix(yamlMessage(errors.New(e)), "line "), ": ")
			n, _ := strconv.Atoi(line)
			c.add(n, "%s", msg)
		}
	}
	// A key left without a value is a file cut short or half edited, never a choice: it would
	// read as "anyone" or "any room".
	for _, n := range c.lines.nulls() {
		c.add(n.Line, "%s has no value", n.Value)
	}
	if doc.Version != 1 {
		c.add(c.lines.of("version"), "version must be 1")
	}
	if len(doc.Rules) == 0 {
		c.add(c.lines.of("rules"), "rules: at least one rule is needed (a request no rule matches is refused)")
	}
	if len(doc.Rules) > maxRules {
		c.add(c.lines.of("rules"), "rules: at most %d", maxRules)
	}
	c.compileProfiles(&doc)
	env, err := celEnv()
	if err != nil {
		return nil, fmt.Errorf("CEL environment: %w", err)
	}
	c.env = env
	seen := map[string]bool{}
	for i, r := range doc.Rules {
		if r != nil && r.Name != "" && seen[r.Name] {
			c.add(c.lines.of("rules."+strconv.Itoa(i)), "rule %q: another rule has this name", r.Name)
		}
		if r != nil {
			seen[r.Name] = true
		}
		if cr := c.compileRule(i, r, doc.Profiles); cr != nil {
			for k, ok := range cr.callers {
				c.pol.accepts[cr.token][k] = c.pol.accepts[cr.token][k] || ok
			}
			c.pol.rules = append(c.pol.rules, cr)
		}
	}
	if len(c.problems) > 0 {
		slices.SortStableFunc(c.problems, func(a, b problem) int { return a.line - b.line })
		out := make(Problems, len(c.problems))
		for i, p := range c.problems {
			out[i] = fmt.Sprintf("%s:%d: %s", name, p.line, p.text)
		}
		return nil, out
	}
	return c.pol, nil
}

// compiler is one Parse: what it has compiled so far and what it found wrong.
type compiler struct {
	name     string
	opts     Options
	lines    lineIndex
	env      *cel.Env
	pol      *Policy
	profiles map[string]*compiledProfile
	problems []problem
	// claimPatterns is, for each claim a room pattern reads, the one pattern that reads it.
	claimPatterns map[string]string
}

type problem struct {
	line int
	text string
}

func (c *compiler) add(line int, format string, args ...any) {
	c.problems = append(c.problems, problem{line, fmt.Sprintf(format, args...)})
}

func (c *compiler) warn(line int, format string, args ...any) {
	c.pol.Warnings = append(c.pol.Warnings, fmt.Sprintf("%s:%d: %s", c.name, line, fmt.Sprintf(format, args...)))
}

func (c *compiler) compileProfiles(doc *document) {
	usedBy := map[string][3]bool{} // which callers reach each profile
	for _, r := range doc.Rules {
		if r == nil {
			continue
		}
		u := usedBy[r.Profile]
		for i, ok := range callerSet(r.Caller) {
			u[i] = u[i] || ok
		}
		usedBy[r.Profile] = u
	}
	for _, n := range slices.Sorted(maps.Keys(doc.Profiles)) {
		p := doc.Profiles[n]
		if p == nil {
			continue // reported as a key without a value
		}
		cp, errs := compileProfile(n, p, usedBy[n][anonymous] || usedBy[n][user], c.lines, "profiles."+n)
		for _, e := range errs {
			c.add(e.line, "profile %q: %s", n, e.text)
		}
		c.profiles[n] = cp
	}
}

// compileRule checks and compiles the i-th rule; nil when it is empty.
func (c *compiler) compileRule(i int, r *ruleSpec, specs map[string]*profile) *rule {
	path := "rules." + strconv.Itoa(i)
	line := c.lines.of(path)
	if r == nil {
		c.add(line, "rule %d is empty", i+1)
		return nil
	}
	label := fmt.Sprintf("rule %d", i+1)
	if r.Name != "" {
		label = fmt.Sprintf("rule %q", r.Name)
	} else {
		c.add(line, "%s: name is required", label)
	}
	cr := &rule{name: r.Name}
	for _, name := range r.Caller {
		if !slices.Contains(callerNames, name) {
			c.add(line, "%s: caller %q must be anonymous, user or service", label, name)
		}
	}
	if c.lines.emptyList(path + ".caller") {
		c.add(line, "%s: caller: an empty list admits nobody; leave caller out to admit every caller, or name them", label)
	}
	cr.callers = callerSet(r.Caller)
	switch r.Token {
	case "", "participant":
		cr.token = participantToken
	case "agent":
		cr.token = agentToken
	default:
		c.add(line, "%s: token must be participant or agent", label)
	}
	if cp, ok := c.profiles[r.Profile]; ok {
		cr.profile = cp
		if cr.token == agentToken && cp.kind != livekit.ParticipantInfo_AGENT && cp.kind != livekit.ParticipantInfo_BRIDGE {
			c.add(line, "%s: an agent token's profile must have kind agent or bridge", label)
		}
		if cr.callers[anonymous] && (cr.token == agentToken || cp.makesAgents()) {
			// Whoever can reach the service would get a participant LiveKit treats as an agent.
			if c.opts.ServiceKeys {
				c.add(line, "%s: gives anonymous callers agent participants (an agent token, a kind other than standard, or the agent grant) while SERVICE_API_KEYS is set: name its callers (service, user)", label)
			} else {
				c.warn(line, "%s: gives anonymous callers agent participants; with SERVICE_API_KEYS set this policy is refused", label)
			}
		}
	} else if r.Profile == "" {
		c.add(line, "%s: profile is required", label)
	} else if specs[r.Profile] == nil {
		c.add(line, "%s: profile %q is not defined", label, r.Profile)
	}
	if r.When != "" {
		prg, err := compileCondition(c.env, r.When)
		if err != nil {
			c.add(line, "%s: when: %s", label, err)
		}
		cr.when = prg
	}
	if c.lines.emptyList(path + ".rooms") {
		c.add(line, "%s: rooms: an empty list matches no room; leave rooms out for any room, or list patterns", label)
	}
	for _, room := range r.Rooms {
		if p, ok := c.roomPattern(line, label, room); ok {
			cr.rooms = append(cr.rooms, p)
		}
	}
	return cr
}

// roomPattern compiles one room pattern. A claim may be read by one pattern only, in the whole
// policy (in as many rules as like): with {claims.org} and {claims.org}-* side by side, room
// acme-corp would be org acme-corp's by the first and org acme's room corp by the second.
func (c *compiler) roomPattern(line int, label, room string) (roomPattern, bool) {
	p, err := parseRoomPattern(room)
	if err != nil {
		c.add(line, "%s: rooms %q: %s", label, room, err)
		return p, false
	}
	for _, claim := range p.claims() {
		if other, ok := c.claimPatterns[claim]; ok && other != room {
			c.add(line, "%s: rooms %q: {claims.%s} is read by pattern %q already; two patterns reading one claim could give one room to two values of it (use one pattern per claim)", label, room, claim, other)
		}
		c.claimPatterns[claim] = room
	}
	for _, sep := range p.separators {
		if unicode.IsLetter(sep) || unicode.IsDigit(sep) {
			c.warn(line, "%s: rooms %q: a * in this pattern never matches %q, which stands next to a placeholder", label, room, sep)
		}
	}
	return p, true
}

func callerSet(names []string) [3]bool {
	var set [3]bool
	if len(names) == 0 {
		return [3]bool{true, true, true}
	}
	for _, n := range names {
		if i := slices.Index(callerNames, n); i >= 0 {
			set[i] = true
		}
	}
	return set
}

// compileProfile checks and compiles one profile; endUsers is true when a rule gives it to
// callers other than services. Each problem carries the line of the key at fault.
func compileProfile(name string, p *profile, endUsers bool, lines lineIndex, path string) (*compiledProfile, []problem) {
	var errs []problem
	bad := func(key, text string) { errs = append(errs, problem{lines.of(path + "." + key), text}) }
	cp := &compiledProfile{name: name, kind: livekit.ParticipantInfo_STANDARD}
	if p.Kind != "" {
		k, ok := livekit.ParticipantInfo_Kind_value[strings.ToUpper(p.Kind)]
		if !ok {
			bad("kind", "kind "+strconv.Quote(p.Kind)+" is not a LiveKit participant kind (standard, agent, bridge, sip, ingress, egress, connector)")
		}
		cp.kind = livekit.ParticipantInfo_Kind(k)
	}
	if p.MaxTTLSeconds < 0 || p.MaxTTLSeconds > maxTTLSeconds {
		bad("max_ttl_seconds", "max_ttl_seconds must be from 0 (MAX_TOKEN_TTL_SECONDS) to 2592000 (30 days)")
	}
	cp.maxTTL = time.Duration(p.MaxTTLSeconds) * time.Second
	cp.grants = p.Grants.permissions()
	cp.sources = p.Grants.CanPublishSources
	if lines.emptyList(path + ".grants.canPublishSources") {
		// LiveKit reads an empty list as every source: leave it out, or turn canPublish off.
		bad("grants.canPublishSources", "grants.canPublishSources: an empty list would let the token publish every source; leave it out for every source, or set canPublish false")
	}
	for _, s := range cp.sources {
		if !slices.Contains(token.PublishSources, s) {
			bad("grants.canPublishSources", "grants.canPublishSources: "+strconv.Quote(s)+" is not camera, microphone, screen_share or screen_share_audio")
		}
	}
	for _, g := range p.CallerMay.Grants {
		switch i := permissionIndex(g); {
		case g == "*":
			for i := range cp.mayGrant {
				cp.mayGrant[i] = true
			}
			cp.maySources = true
		case g == "canPublishSources":
			cp.maySources = true
		case i >= 0:
			cp.mayGrant[i] = true
		default:
			bad("caller_may.grants", "caller_may.grants: "+strconv.Quote(g)+" is not a VideoGrant permission")
		}
	}
	for _, k := range p.CallerMay.Kinds {
		switch k {
		case "agent":
			cp.kinds = append(cp.kinds, livekit.ParticipantInfo_AGENT)
		case "bridge":
			cp.kinds = append(cp.kinds, livekit.ParticipantInfo_BRIDGE)
		default:
			bad("caller_may.kinds", "caller_may.kinds: "+strconv.Quote(k)+" must be agent or bridge")
		}
	}
	cp.mayName, cp.mayMetadata = p.CallerMay.Name, p.CallerMay.Metadata
	for _, a := range p.CallerMay.Attributes {
		kp, err := parseKeyPattern(a)
		if err != nil {
			bad("caller_may.attributes", "caller_may.attributes: "+err.Error())
		} else if endUsers && a != "*" && reservedAttribute(a) {
			bad("caller_may.attributes", "caller_may.attributes: "+strconv.Quote(a)+" is reserved for LiveKit (lk., sip.) and only a service may set it, but a rule gives this profile to other callers")
		}
		cp.attributes = append(cp.attributes, kp)
	}
	fields := (&livekit.RoomConfiguration{}).ProtoReflect().Descriptor().Fields()
	for _, f := range p.CallerMay.RoomConfig {
		switch {
		case f == "*":
			cp.allConfig = true
		case fields.ByName(protoName(f)) == nil:
			bad("caller_may.room_config", "caller_may.room_config: "+strconv.Quote(f)+" is not a RoomConfiguration field")
		default:
			if cp.roomConfig == nil {
				cp.roomConfig = map[string]bool{}
			}
			cp.roomConfig[string(protoName(f))] = true // as a request's fields are named when checked
		}
	}
	if lines.emptyList(path + ".caller_may.agents") {
		bad("caller_may.agents", "caller_may.agents: an empty list names no agent; leave it out, or name the agents")
	}
	for _, a := range p.CallerMay.Agents {
		switch {
		case a == "*":
			cp.allAgents = true
		case a == "":
			bad("caller_may.agents", "caller_may.agents: an agent name must not be empty")
		default:
			if cp.agents == nil {
				cp.agents = map[string]bool{}
			}
			cp.agents[a] = true
		}
	}
	if len(p.CallerMay.Agents) > 0 && !cp.allConfig && !cp.roomConfig["agents"] {
		bad("caller_may.agents", "caller_may.agents needs agents in caller_may.room_config")
	}
	if p.Fixed.Name != "" {
		t, err := parseTemplate(p.Fixed.Name)
		if err != nil {
			bad("fixed.name", "fixed.name: "+err.Error())
		}
		cp.fixedName = &t
	}
	var err []string
	cp.fixedMetadata, err = fixedValues("fixed.metadata", p.Fixed.Metadata)
	for _, e := range err {
		bad("fixed.metadata", e)
	}
	cp.fixedAttrs, err = fixedValues("fixed.attributes", p.Fixed.Attributes)
	for _, e := range err {
		bad("fixed.attributes", e)
	}
	for _, f := range cp.fixedAttrs {
		if endUsers && reservedAttribute(f.key) {
			bad("fixed.attributes", "fixed.attributes: "+strconv.Quote(f.key)+" is reserved for LiveKit (lk., sip.), but a rule gives this profile to end users")
		}
	}
	return cp, errs
}

// makesAgents reports whether a token of this profile is one LiveKit treats as an agent: a kind
// other than standard, or the agent grant (given, or the caller's to turn on).
func (cp *compiledProfile) makesAgents() bool {
	return cp.kind != livekit.ParticipantInfo_STANDARD || cp.grants.Agent || cp.mayGrant[agentPermission] || len(cp.kinds) > 0
}

func fixedValues(field string, m map[string]string) ([]fixedValue, []string) {
	var out []fixedValue
	var errs []string
	for k, v := range m {
		t, err := parseTemplate(v)
		if err != nil {
			errs = append(errs, field+"."+k+": "+err.Error())
		}
		out = append(out, fixedValue{key: k, value: t})
	}
	slices.SortFunc(out, func(a, b fixedValue) int { return strings.Compare(a.key, b.key) })
	sort.Strings(errs)
	return out, errs
}

// protoName is a RoomConfiguration field's proto name whichever way it is spelled (proto names
// are what protojson writes back; JSON names are accepted too).
func protoName(f string) protoreflect.Name {
	fields := (&livekit.RoomConfiguration{}).ProtoReflect().Descriptor().Fields()
	if fd := fields.ByJSONName(f); fd != nil {
		return fd.Name()
	}
	return protoreflect.Name(f)
}

var goTypeName = regexp.MustCompile(` (in|into) type policy\.\w+`)

// yamlMessage words a YAML error for an operator: no "yaml:" prefix, no Go type names.
func yamlMessage(err error) string {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	msg = strings.TrimPrefix(msg, "unmarshal errors:\n  ")
	return goTypeName.ReplaceAllString(msg, "")
}

// lineIndex finds the line of a key path such as "profiles.host" or "rules.2".
type lineIndex struct{ root *yaml.Node }

// node is the value at a key path such as "rules.2.caller", nil when there is none.
func (l lineIndex) node(path string) *yaml.Node {
	if l.root == nil || len(l.root.Content) == 0 {
		return nil
	}
	n := l.root.Content[0]
	for key := range strings.SplitSeq(path, ".") {
		var next *yaml.Node
		switch n.Kind {
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == key {
					next = n.Content[i+1]
				}
			}
		case yaml.SequenceNode:
			if i, err := strconv.Atoi(key); err == nil && i < len(n.Content) {
				next = n.Content[i]
			}
		}
		if next == nil {
			return nil
		}
		n = next
	}
	return n
}

// emptyList reports whether the value at path is written as an empty list ([]).
func (l lineIndex) emptyList(path string) bool {
	n := l.node(path)
	return n != nil && n.Kind == yaml.SequenceNode && len(n.Content) == 0
}

// nulls are the keys written without a value (null, ~, or nothing after the colon), in file
// order; each key node is returned.
func (l lineIndex) nulls() []*yaml.Node {
	var out []*yaml.Node
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		if n.Kind == yaml.MappingNode {
			for i := 0; i+1 < len(n.Content); i += 2 {
				if v := n.Content[i+1]; v.Kind == yaml.ScalarNode && v.Tag == "!!null" {
					out = append(out, n.Content[i])
				}
			}
		}
		for _, c := range n.Content {
			walk(c)
		}
	}
	if l.root != nil {
		walk(l.root)
	}
	return out
}

func (l lineIndex) of(path string) int {
	n := l.root
	if n == nil || len(n.Content) == 0 {
		return 1
	}
	n = n.Content[0]
	line := n.Line
	for key := range strings.SplitSeq(path, ".") {
		var next *yaml.Node
		switch n.Kind {
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == key {
					line, next = n.Content[i].Line, n.Content[i+1]
				}
			}
		case yaml.SequenceNode:
			if i, err := strconv.Atoi(key); err == nil && i < len(n.Content) {
				next = n.Content[i]
				line = next.Line
			}
		}
		if next == nil {
			return line
		}
		n = next
	}
	return line
}
