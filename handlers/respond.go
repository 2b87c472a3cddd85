package handlers

import (
	"bytes"
	"errors"
	"io"
	"mime"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"
	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	"github.com/livekit/protocol/livekit"
	"github.com/rs/zerolog"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/token-service/token-service/middleware"
	"github.com/token-service/token-service/moderation"
	"github.com/token-service/token-service/token"
)

// MaxBodyBytes caps every request body (the contract's 256 KiB).
const MaxBodyBytes = 256 << 10

// maxEchoedFieldLen keeps a reply from echoing a huge unknown member name back to the caller.
const maxEchoedFieldLen = 64

// apiError is a reply that is not a token: a status, a stable code for programs, a sentence for
// people and, when one field is at fault, its name. A 401 carries its WWW-Authenticate challenge.
type apiError struct {
	Status    int    `json:"-"`
	Code      string `json:"error"`
	Message   string `json:"message"`
	Field     string `json:"field,omitzero"`
	challenge string
}

func (e *apiError) Error() string { return e.Message }

var (
	errNotFound         = &apiError{Status: http.StatusNotFound, Code: "not_found", Message: "no such endpoint"}
	errMethodNotAllowed = &apiError{Status: http.StatusMethodNotAllowed, Code: "method_not_allowed", Message: "method not allowed on this endpoint"}
	errRateLimited      = &apiError{Status: http.StatusTooManyRequests, Code: "rate_limited", Message: "too many requests: retry after the number of seconds in Retry-After"}
	errInternal         = &apiError{Status: http.StatusInternalServerError, Code: "internal", Message: "internal error"}
	errTooLarge         = &apiError{Status: http.StatusRequestEntityTooLarge, Code: "payload_too_large", Message: "request body must be at most 256 KiB"}
	errMediaType        = &apiError{Status: http.StatusUnsupportedMediaType, Code: "unsupported_media_type", Message: "request body must be JSON (Content-Type: application/json)"}
)

// Refusal is how the service answers a refused request: Status, and the JSON body's error
// code, message and field.
type Refusal struct {
	Status  int
	Code    string
	Message string
	Field   string
}

// RefusalOf is the one table from errors to replies (the router's, the moderation endpoints' and
// policy explain's); ok is false for an error that is ours, answered 500 with no detail.
func RefusalOf(err error) (r Refusal, ok bool) {
	reply, ok := refusal(err)
	if !ok {
		return Refusal{}, false
	}
	return Refusal{Status: reply.Status, Code: reply.Code, Message: reply.Message, Field: reply.Field}, true
}

func refusal(err error) (*apiError, bool) {
	var reply *apiError
	var invalid *token.Invalid
	var unauthorized *token.Unauthorized
	var forbidden *token.Forbidden
	switch {
	case errors.As(err, &reply):
		return reply, true
	case errors.As(err, &invalid):
		return badRequest("invalid_request", invalid.Error(), invalid.Field), true
	case errors.As(err, &unauthorized):
		challenge := "Bearer"
		if unauthorized.BadCredentials {
			challenge = `Bearer error="invalid_token"`
		}
		return &apiError{Status: http.StatusUnauthorized, Code: "unauthorized", Message: unauthorized.Error(), challenge: challenge}, true
	case errors.As(err, &forbidden):
		return &apiError{Status: http.StatusForbidden, Code: "forbidden", Message: forbidden.Reason, Field: forbidden.Field}, true
	case errors.Is(err, moderation.ErrUnavailable):
		return &apiError{Status: http.StatusServiceUnavailable, Code: "unavailable", Message: moderation.ErrUnavailable.Error() + ": retry"}, true
	case errors.Is(err, moderation.ErrFull):
		return &apiError{Status: http.StatusConflict, Code: "too_many_bans", Message: strconv.Itoa(moderation.MaxBans) + " bans are held already: lift some, or wait for them to expire"}, true
	case errors.Is(err, moderation.ErrNoSuchBan):
		return &apiError{Status: http.StatusNotFound, Code: "not_found", Message: moderation.ErrNoSuchBan.Error()}, true
	}
	return nil, false
}

// requestLineBytes is what the request line takes of the header limit, as net/http counts it:
// method, target and protocol, with their spaces and CRLF. The method counts too, since a
// caller may send one of 60 KB.
func requestLineBytes(r *http.Request) int {
	return len(r.Method) + len(r.RequestURI) + len(r.Proto) + 4
}

func badRequest(code, message, field string) *apiError {
	return &apiError{Status: http.StatusBadRequest, Code: code, Message: message, Field: field}
}

// decode reads one JSON object of type T from the request. Every way a body can be wrong comes
// back as an error naming the field where there is one: unknown and duplicate members are
// refused so that a typo such as "canpublish" is never silently ignored.
func decode[T any](w http.ResponseWriter, r *http.Request) (T, error) {
	body, err := jsonBody(w, r)
	if err != nil {
		var zero T
		return zero, err
	}
	v, err := decodeFrom[T](body)
	if err == errTooLarge {
		drainRefused(w, r.Body)
	}
	return v, err
}

// DecodeRequest reads a request body as the router does, with the same refusals: policy explain
// decodes with it, so that it refuses exactly what the server refuses.
func DecodeRequest[T any](body []byte) (T, error) {
	if len(body) > MaxBodyBytes {
		var zero T
		return zero, errTooLarge
	}
	return decodeFrom[T](bytes.NewReader(body))
}

func decodeFrom[T any](body io.Reader) (T, error) {
	var v T
	// Streamed rather than read whole first: that would cost two allocations per request.
	if err := json.UnmarshalRead(body, &v, json.RejectUnknownMembers(true)); err != nil {
		return v, decodeError(overLimit(body, err))
	}
	return v, nil
}

// jsonBody applies the rules every body shares: at most MaxBodyBytes, and a JSON content type.
// An announced length over the limit is refused before a byte is used; an unannounced one
// (chunked) fails the read at the limit, which decodeError turns into a 413.
func jsonBody(w http.ResponseWriter, r *http.Request) (io.Reader, error) {
	if r.ContentLength > MaxBodyBytes {
		drainRefused(w, r.Body)
		return nil, errTooLarge
	}
	if !isJSON(r.Header.Get("Content-Type")) {
		return nil, errMediaType
	}
	return http.MaxBytesReader(w, r.Body, MaxBodyBytes), nil
}

// maxDrainBytes is the most of a refused body read before its 413 is sent. net/http closes the
// connection after a reply that left more than 256 KiB of the body unread, and a client still
// writing then sees a reset instead of its 413; reading the rest first, up to a bound (the read
// timeout bounds the time), lets an ordinary client read why it was refused.
const maxDrainBytes = 1 << 20

// drainRefused reads what is left of a body refused as too large, up to maxDrainBytes; past that
// the connection is closed after the reply.
func drainRefused(w http.ResponseWriter, body io.Reader) {
	if n, _ := io.CopyN(io.Discard, body, maxDrainBytes+1); n > maxDrainBytes {
		w.Header().Set("Connection", "close")
	}
}

// overLimit decides which of two mistakes a failed decode reports. The decoder stops at the first
// thing wrong (an unknown field, bad syntax) long before the end of the body, and a body over the
// limit must be a 413 whatever it holds, so the rest of the body is read (up to the limit) to see
// whether it is too large.
func overLimit(body io.Reader, err error) error {
	if _, drainErr := io.Copy(io.Discard, body); drainErr != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(drainErr, &tooLarge) {
			return drainErr
		}
	}
	return err
}

// decodeProto reads one protobuf message in protojson (snake_case or camelCase names), under the
// same body rules as decode. Unknown fields are ignored, since LiveKit's SDKs may send fields
// newer than our copy of the protocol.
func decodeProto(w http.ResponseWriter, r *http.Request, msg proto.Message) error {
	reader, err := jsonBody(w, r)
	if err != nil {
		return err
	}
	body, err := io.ReadAll(reader)
	if err != nil {
		err = decodeError(err)
		if err == errTooLarge {
			drainRefused(w, r.Body)
		}
		return err
	}
	return protoFrom(body, msg)
}

// DecodeTokenSource reads POST /connection-details' body as the router does (policy explain).
func DecodeTokenSource(body []byte) (*livekit.TokenSourceRequest, error) {
	if len(body) > MaxBodyBytes {
		return nil, errTooLarge
	}
	var req livekit.TokenSourceRequest
	return &req, protoFrom(body, &req)
}

func protoFrom(body []byte, msg proto.Message) error {
	if !jsontext.Value(body).IsValid() {
		return badRequest("invalid_json", "request body is not valid JSON", "")
	}
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(body, msg); err != nil {
		return badRequest("invalid_request", "request body is not a valid "+string(msg.ProtoReflect().Descriptor().Name()), "")
	}
	return nil
}

func isJSON(contentType string) bool {
	if contentType == "application/json" { // the common case, without ParseMediaType's allocations
		return true
	}
	mediaType, _, err := mime.ParseMediaType(contentType)
	return err == nil && (mediaType == "application/json" || strings.HasSuffix(mediaType, "+json"))
}

func decodeError(err error) error {
	var invalid *token.Invalid
	var semantic *json.SemanticError
	var syntactic *jsontext.SyntacticError
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		return errTooLarge
	case errors.As(err, &invalid): // a field's own decoder refused it (room_config)
		return invalid
	case errors.Is(err, json.ErrUnknownName) && errors.As(err, &semantic):
		field := fieldName(semantic.JSONPointer)
		return badRequest("invalid_request", "unknown field "+field, field)
	case errors.Is(err, jsontext.ErrDuplicateName) && errors.As(err, &syntactic):
		field := fieldName(syntactic.JSONPointer)
		return badRequest("invalid_request", "field "+field+" appears more than once", field)
	case errors.As(err, &semantic) && semantic.JSONPointer == "":
		return badRequest("invalid_request", "request body must be a JSON object", "")
	case errors.As(err, &semantic):
		field := fieldName(semantic.JSONPointer)
		return badRequest("invalid_request", field+" must be "+describe(semantic.GoType), field)
	case errors.As(err, &syntactic):
		return badRequest("invalid_json", "request body is not valid JSON: "+syntactic.Err.Error(), "")
	default: // the body could not be read at all (the client went away mid-body)
		return badRequest("invalid_json", "request body could not be read", "")
	}
}

// fieldName turns a JSON Pointer such as /grants/canPublish into the dotted name the replies use.
func fieldName(p jsontext.Pointer) string {
	return echoed(strings.Join(slices.Collect(p.Tokens()), "."))
}

// echoed is a caller's name for something as a reply repeats it: valid UTF-8 (which the JSON
// encoder requires), cut at maxEchoedFieldLen.
func echoed(name string) string {
	if len(name) > maxEchoedFieldLen {
		return strings.ToValidUTF8(name[:maxEchoedFieldLen], "") + "…"
	}
	return strings.ToValidUTF8(name, "")
}

func describe(t reflect.Type) string {
	if t == nil {
		return "of another type"
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int64:
		return "a whole number"
	case reflect.Struct, reflect.Map:
		return "an object"
	}
	return "of another type"
}

var jsonContentType = []string{"application/json"} // shared: see middleware's constant headers

// encode writes v as the JSON reply with the given status.
func encode(w http.ResponseWriter, status int, v any) {
	w.Header()["Content-Type"] = jsonContentType
	w.WriteHeader(status)
	_ = json.MarshalWrite(w, v) // the status is sent; a failed write means the client has gone
}

// responder writes error replies, and logs the ones that are our fault.
type responder struct{ log zerolog.Logger }

// error is the one place an error becomes a reply: a refusal keeps its status and message
// (RefusalOf); anything else is our fault, logged in full and answered with no detail.
func (rs responder) error(w http.ResponseWriter, r *http.Request, err error) {
	reply, ok := refusal(err)
	if !ok {
		rs.log.Error().Str("request_id", middleware.RequestIDOf(w)).Str("route", chi.RouteContext(r.Context()).RoutePattern()).Err(err).Msg("request failed")
		reply = errInternal
	}
	if reply.challenge != "" {
		w.Header().Set("WWW-Authenticate", reply.challenge)
	}
	encode(w, reply.Status, reply)
}
