package logging

import "testing"

// The fast path must not let a sensitive key through, whatever the key's case or surroundings and
// however the line's other strings are escaped.
func TestHasSensitiveKey(t *testing.T) {
	for _, tc := range []struct {
		line string
		want bool
	}{
		{`{"level":"info","route":"/token","message":"request"}`, false},
		{`{"message":"the token is fine"}`, false},
		{`{"token":"x"}`, true},
		{`{"a":1,"Access_Token":"x"}`, true},
		{`{"AUTHORIZATION":"x"}`, true},
		{`{"msg":"a \"secret\": in a value","n":1}`, false},
		{`{"msg":"ends with a backslash\\","password":"x"}`, true},
		{`{"nested":{"cookie_jar":"x"}}`, true},
		{`{"bearer_x":1}`, true},
	} {
		if got := hasSensitiveKey([]byte(tc.line)); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.line, got, tc.want)
		}
	}
}
