package token

import (
	"github.com/go-json-experiment/json/jsontext"
	"github.com/livekit/protocol/auth"
	"github.com/livekit/protocol/livekit"
	"google.golang.org/protobuf/encoding/protojson"
)

// parseRoomConfig reads room_config, LiveKit's RoomConfiguration in protojson (snake_case or
// camelCase). A configuration carrying storage credentials is refused, as livekit/protocol refuses
// to sign it: the token would hand them to every client.
func parseRoomConfig(raw jsontext.Value) (*livekit.RoomConfiguration, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	cfg := &livekit.RoomConfiguration{}
	if err := protojson.Unmarshal(raw, cfg); err != nil {
		return nil, invalidf("room_config", "is not a valid LiveKit room configuration")
	}
	return cfg, checkRoomConfig(cfg)
}

func checkRoomConfig(cfg *livekit.RoomConfiguration) error {
	if cfg == nil {
		return nil
	}
	if err := (*auth.RoomConfiguration)(cfg).CheckCredentials(); err != nil {
		return invalidf("room_config", "must not carry storage credentials")
	}
	return nil
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
