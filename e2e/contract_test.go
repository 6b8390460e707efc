package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/nexus-fintech/nexus/openapi"
)

// The document is the contract: every answer the harness's do receives is
// validated against it (status documented, headers and body matching the
// schema), so openapi.yaml cannot drift from what the server does.
var contract struct {
	once   sync.Once
	router routers.Router
	err    error
}

func contractRouter() (routers.Router, error) {
	contract.once.Do(func() {
		doc, err := openapi3.NewLoader().LoadFromData(openapi.Document)
		if err != nil {
			contract.err = err
			return
		}
		if err = doc.Validate(context.Background()); err != nil {
			contract.err = err
			return
		}
		// HTML pages and the YAML document are checked as text.
		openapi3filter.RegisterBodyDecoder("text/html", openapi3filter.FileBodyDecoder)
		openapi3filter.RegisterBodyDecoder("application/yaml", openapi3filter.FileBodyDecoder)
		// Servers run on random ports: match paths on any host.
		doc.Servers = nil
		contract.router, contract.err = gorillamux.NewRouter(doc)
	})
	return contract.router, contract.err
}

// checkContract reports an answer the document does not describe. Requests
// to undocumented paths (unknown-route tests) are not checked here; the
// route-table test covers the other direction.
func checkContract(t testing.TB, req *http.Request, status int, header http.Header, body []byte) {
	t.Helper()
	router, err := contractRouter()
	if err != nil {
		t.Fatalf("openapi.yaml does not load: %v", err)
	}
	route, params, err := router.FindRoute(req)
	if err != nil {
		return
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{
			Request: req, PathParams: params, Route: route,
			Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc},
		},
		Status: status,
		Header: header,
		Body:   io.NopCloser(bytes.NewReader(body)),
		Options: &openapi3filter.Options{
			IncludeResponseStatus: true,
			MultiError:            false,
		},
	}
	record(route.Operation.OperationID, req, status, header, body)
	if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
		t.Errorf("%s %s answered %d, which openapi.yaml does not describe: %v\nbody: %s", req.Method, req.URL.Path, status, err, tail(string(body), 500))
	}
}

// recorder keeps, when NEXUS_E2E_RECORD names a file, a few exchanges per
// operation and status as JSON lines: the examples of openapi.yaml are
// taken from what the tests really send and receive.
var recorder struct {
	sync.Mutex
	seen map[string]int
}

type recorded struct {
	Operation    string `json:"operation"`
	Method       string `json:"method"`
	URL          string `json:"url"`
	Status       int    `json:"status"`
	RequestType  string `json:"request_type,omitempty"`
	Request      string `json:"request,omitempty"`
	ResponseType string `json:"response_type,omitempty"`
	Response     string `json:"response,omitempty"`
}

// recordExchange records an exchange that is not checked against the
// document here (the ledger and OAuth helpers' own clients).
func recordExchange(req *http.Request, status int, header http.Header, body []byte) {
	if os.Getenv("NEXUS_E2E_RECORD") == "" {
		return
	}
	router, err := contractRouter()
	if err != nil {
		return
	}
	if route, _, err := router.FindRoute(req); err == nil {
		record(route.Operation.OperationID, req, status, header, body)
	}
}

func record(op string, req *http.Request, status int, header http.Header, body []byte) {
	file := os.Getenv("NEXUS_E2E_RECORD")
	if file == "" || op == "" {
		return
	}
	var reqBody []byte
	if req.GetBody != nil {
		if rc, err := req.GetBody(); err == nil {
			reqBody, _ = io.ReadAll(rc)
		}
	}
	recorder.Lock()
	defer recorder.Unlock()
	if recorder.seen == nil {
		recorder.seen = map[string]int{}
	}
	k := fmt.Sprintf("%s %d %t", op, status, len(reqBody) > 0)
	if recorder.seen[k] >= 3 {
		return
	}
	recorder.seen[k]++
	line, _ := json.Marshal(recorded{Operation: op, Method: req.Method, URL: req.URL.String(), Status: status,
		RequestType: req.Header.Get("Content-Type"), Request: string(reqBody),
		ResponseType: header.Get("Content-Type"), Response: string(body)})
	f, err := os.OpenFile(file, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return
	}
	defer f.Close()
	_, _ = f.Write(append(line, '\n'))
}
