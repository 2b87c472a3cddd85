package handlers_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/go-chi/chi/v5"

	"github.com/token-service/token-service/api"
)

var contract = sync.OnceValues(func() (*openapi3.T, error) {
	doc, err := openapi3.NewLoader().LoadFromData(api.OpenAPI)
	if err != nil {
		return nil, err
	}
	return doc, doc.Validate(context.Background())
})

// contractRouter matches requests to the document's operations, whatever host the test runs on.
var contractRouter = sync.OnceValues(func() (routers.Router, error) {
	doc, err := contract()
	if err != nil {
		return nil, err
	}
	local := *doc
	local.Servers = nil
	return gorillamux.NewRouter(&local)
})

func TestOpenAPIDocumentIsValid(t *testing.T) {
	doc, err := contract()
	if err != nil {
		t.Fatalf("api/openapi.yaml: %v", err)
	}
	if !doc.IsOpenAPI31OrLater() {
		t.Errorf("openapi: %s, want 3.1", doc.OpenAPI)
	}
}

// Every route the router serves is documented, and every documented operation is served.
func TestOpenAPIDocumentsEveryRoute(t *testing.T) {
	doc, err := contract()
	if err != nil {
		t.Fatal(err)
	}
	router, _, _ := newRouter(t)
	var served, documented []string
	err = chi.Walk(router.(chi.Routes), func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		served = append(served, method+" "+route)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			documented = append(documented, method+" "+path)
		}
	}
	slices.Sort(served)
	slices.Sort(documented)
	if !slices.Equal(served, documented) {
		t.Errorf("served:     %v\ndocumented: %v", served, documented)
	}

	srv := newServer(t)
	r := srv.do(t, http.MethodGet, "/openapi.yaml", "")
	if r.status != 200 || r.header.Get("Content-Type") != "application/yaml" || !strings.HasPrefix(r.raw, "openapi: 3.1") {
		t.Errorf("GET /openapi.yaml = %d %s", r.status, r.header)
	}
}

// checkContract validates one exchange against the document: the response always, and the
// request when it succeeded (hostile requests are invalid on purpose). Routes the document does
// not know (404s, 405s) are skipped: there is no operation to check them against.
func checkContract(t *testing.T, method, url, contentType, body string, r reply) {
	t.Helper()
	router, err := contractRouter()
	if err != nil {
		t.Fatalf("api/openapi.yaml: %v", err)
	}
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	route, params, err := router.FindRoute(req)
	if err != nil {
		return
	}
	options := &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, IncludeResponseStatus: true}
	input := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route, Options: options}
	if r.status < 300 && contentType == "application/json" {
		if err := openapi3filter.ValidateRequest(context.Background(), input); err != nil {
			t.Errorf("%s %s: the request does not match api/openapi.yaml: %v", method, route.Path, err)
		}
	}
	err = openapi3filter.ValidateResponse(context.Background(), &openapi3filter.ResponseValidationInput{
		RequestValidationInput: input, Status: r.status, Header: r.header,
		Body: io.NopCloser(bytes.NewReader([]byte(r.raw))), Options: options,
	})
	if err != nil {
		t.Errorf("%s %s: the %d reply does not match api/openapi.yaml: %v", method, route.Path, r.status, err)
	}
}
