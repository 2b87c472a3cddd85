package config

// Secret is a value that must never be printed: it shows as "[redacted]" in logs, errors, %v, %#v
// and JSON. Reveal is the one way to read it.
type Secret string

const redacted = "[redacted]"

func (Secret) String() string               { return redacted }
func (Secret) GoString() string             { return redacted }
func (Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }
func (Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// Reveal returns the secret itself, for the one place that signs with it.
func (s Secret) Reveal() string { return string(s) }
