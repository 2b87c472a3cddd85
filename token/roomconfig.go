package token

import (
	"slices"
	"strings"

	"github.com/go-json-experiment/json/jsontext"
	"github.com/livekit/protocol/livekit"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// RoomConfig is a request's room_config: LiveKit's RoomConfiguration, read from protojson
// (snake_case or camelCase) while the body is decoded, so that it is parsed once.
type RoomConfig struct {
	// Config is nil when none was sent: absent, null, or empty ({}, which the Android and Swift
	// SDKs always send).
	Config *livekit.RoomConfiguration
}

// UnmarshalJSONFrom reads room_config as the request body is decoded.
func (rc *RoomConfig) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	raw, err := dec.ReadValue()
	if err != nil {
		return err
	}
	rc.Config = nil
	if raw.Kind() == 'n' {
		return nil
	}
	cfg := &livekit.RoomConfiguration{}
	if err := protojson.Unmarshal(raw, cfg); err != nil {
		return invalidf("room_config", "is not a valid LiveKit room configuration")
	}
	if proto.Size(cfg) > 0 {
		rc.Config = cfg
	}
	return nil
}

// MarshalJSONTo writes room_config back as protojson, for policy explain's input echo and tests.
func (rc RoomConfig) MarshalJSONTo(enc *jsontext.Encoder) error {
	if rc.Config == nil {
		return enc.WriteToken(jsontext.Null)
	}
	raw, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(rc.Config)
	if err != nil {
		return err
	}
	return enc.WriteValue(raw)
}

// roomConfigFields are the RoomConfiguration fields that may travel in a token, by their proto
// names from the top of the message (list indexes left out). The token is readable by the
// client, so this is an allowlist: a field LiveKit adds later, or any not named here, is
// refused until someone decides it holds no secret. Left out on purpose:
//   - every storage upload (s3, gcp, azure, aliOSS): they carry keys, session tokens, external
//     ids and proxy passwords; egress then writes to the storage configured on the server;
//   - stream outputs, whose RTMP URLs carry stream keys, and egress webhooks (signing_key);
//   - egress.room.custom_base_url, a URL that may carry credentials of its own and receives
//     the recorder's token;
//   - agents.thread_id, which would let a client pick the durable thread an agent reads;
//   - the deprecated single file/stream/segments outputs of room composite egress.
var roomConfigFields = []string{
	"name", "empty_timeout", "departure_timeout", "max_participants", "metadata",
	"min_playout_delay", "max_playout_delay", "sync_streams", "tags",
	"agents.agent_name", "agents.metadata", "agents.attributes", "agents.deployment", "agents.restart_policy",
	"egress.room.room_name", "egress.room.layout", "egress.room.audio_only", "egress.room.audio_mixing",
	"egress.room.video_only", "egress.room.preset",
	"egress.tracks.filepath", "egress.tracks.disable_manifest",
	"egress.participant.preset",
}

// Parts shared by several egress kinds.
var (
	encodingFields = []string{"width", "height", "depth", "framerate", "audio_codec", "audio_bitrate",
		"audio_frequency", "video_codec", "video_bitrate", "key_frame_interval", "audio_quality", "video_quality"}
	fileFields    = []string{"file_type", "filepath", "disable_manifest"}
	segmentFields = []string{"protocol", "filename_prefix", "playlist_name", "live_playlist_name",
		"segment_duration", "filename_suffix", "disable_manifest"}
	imageFields = []string{"capture_interval", "width", "height", "filename_prefix", "filename_suffix",
		"image_codec", "disable_manifest"}
)

// allowedRoomConfig is roomConfigFields with the shared parts spelled out under each egress.
var allowedRoomConfig = func() map[string]bool {
	allowed := map[string]bool{}
	add := func(prefix string, fields []string) {
		for _, f := range fields {
			allowed[prefix+f] = true
		}
	}
	add("", roomConfigFields)
	for _, egress := range []string{"egress.room.", "egress.participant."} {
		add(egress+"advanced.", encodingFields)
		add(egress+"file_outputs.", fileFields)
		add(egress+"segment_outputs.", segmentFields)
	}
	add("egress.room.image_outputs.", imageFields)
	return allowed
}()

// MaxAgents is the most agents one token's room configuration may dispatch. A dispatch without
// a name (LiveKit's default, to workers registered without one) is not one a token may ask for.
const MaxAgents = 8

// validateRoomConfig refuses the first field set in cfg that is not in allowedRoomConfig, naming
// it (room_config.egress.room.file_outputs.s3.secret) and never its value, and more agents
// than MaxAgents or one without a proper name.
func validateRoomConfig(cfg *livekit.RoomConfiguration) error {
	if cfg == nil {
		return nil
	}
	if field := refusedField(cfg.ProtoReflect(), "", false); field != "" {
		return invalidf("room_config."+field, "may not be set in a token's room configuration, which the client can read")
	}
	// Each agent may cost calls to LiveKit's API (package dispatch) and a job on a worker.
	if len(cfg.GetAgents()) > MaxAgents {
		return invalidf("room_config.agents", "may name at most %d agents", MaxAgents)
	}
	for _, a := range cfg.GetAgents() {
		if err := checkIdentifier("room_config.agents.agent_name", a.GetAgentName(), true); err != nil {
			return err
		}
	}
	return nil
}

// refusedField walks the fields set in msg, in field-number order so that the answer is stable,
// and returns the path of the first one not allowed; "" if all are. Under a refused message every
// field is refused, so the path names the leaf that holds the value (s3.session_token), not only
// its container.
func refusedField(msg protoreflect.Message, prefix string, refused bool) string {
	var fields []protoreflect.FieldDescriptor
	msg.Range(func(fd protoreflect.FieldDescriptor, _ protoreflect.Value) bool {
		fields = append(fields, fd)
		return true
	})
	slices.SortFunc(fields, func(a, b protoreflect.FieldDescriptor) int { return int(a.Number() - b.Number()) })
	for _, fd := range fields {
		path := prefix + string(fd.Name())
		if !refused && allowedRoomConfig[path] {
			continue
		}
		if fd.Message() == nil || fd.IsMap() {
			return path
		}
		// A message is walked into: allowed when some allowed field lies under it.
		under := refused || !allowedUnder(path)
		value := msg.Get(fd)
		var inner []protoreflect.Message
		if fd.IsList() {
			for i := range value.List().Len() {
				inner = append(inner, value.List().Get(i).Message())
			}
		} else {
			inner = append(inner, value.Message())
		}
		for _, m := range inner {
			if field := refusedField(m, path+".", under); field != "" {
				return field
			}
		}
		if under && len(inner) > 0 { // set but empty: the container itself is the refused field
			return path
		}
	}
	return ""
}

func allowedUnder(path string) bool {
	for allowed := range allowedRoomConfig {
		if strings.HasPrefix(allowed, path+".") {
			return true
		}
	}
	return false
}

// roomConfigJSON is a room configuration as /token/verify reports it.
func roomConfigJSON(cfg *livekit.RoomConfiguration) jsontext.Value {
	if cfg == nil {
		return nil
	}
	raw, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(cfg)
	if err != nil {
		return nil
	}
	return raw
}
