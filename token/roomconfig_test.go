package token

import (
	"strings"
	"testing"

	"github.com/livekit/protocol/livekit"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Every allowlisted path names a real field of LiveKit's RoomConfiguration, and no field on it
// is one livekit/protocol marks secret, so that a typo cannot hide behind the list and a
// protocol upgrade that renames a field is noticed.
func TestRoomConfigAllowlistNamesRealFields(t *testing.T) {
	root := (&livekit.RoomConfiguration{}).ProtoReflect().Descriptor()
	for path := range allowedRoomConfig {
		md := root
		var fd protoreflect.FieldDescriptor
		for name := range strings.SplitSeq(path, ".") {
			if md == nil {
				t.Fatalf("%s: %s is not a message", path, fd.Name())
			}
			fd = md.Fields().ByName(protoreflect.Name(name))
			if fd == nil {
				t.Fatalf("%s: no field %q in %s", path, name, md.FullName())
			}
			md = fd.Message()
			if fd.IsMap() {
				md = nil
			}
		}
		if md != nil {
			t.Errorf("%s is a message: allow its fields one by one", path)
		}
		name := string(fd.Name())
		switch name[strings.LastIndex(name, "_")+1:] { // access_key, session_token, external_id ...
		case "secret", "key", "password", "token", "credentials", "url", "urls", "id":
			t.Errorf("%s looks credential-bearing", path)
		}
	}
}
