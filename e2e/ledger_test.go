package e2e

// Ledger end-to-end tests: funding, addresses, withdrawal requests and
// balances (CONTRACT §5), their errors (§4) and their audit rows (§8). The
// small HTTP helpers of these files are prefixed lg so that they never
// collide with the harness's own.

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/sha3"
)

// ---------------------------------------------------------------------------
// HTTP helpers

// lgAPI calls one server with one credential.
type lgAPI struct {
	base string
	key  string
	hc   *http.Client
}

// lgClient is a client of s with key and a transport of its own (conns
// connections at most), whose connections are closed when the test ends.
// Closing them matters: a connection that was dialled but never carried a
// request (Go's transport dials while waiting and may then use another
// connection) holds up the server's graceful shutdown until its read
// timeout, longer than the harness waits.
func lgClient(t testing.TB, s *Server, key string, conns int) *lgAPI {
	tr := &http.Transport{
		MaxIdleConns:        conns,
		MaxIdleConnsPerHost: conns,
		MaxConnsPerHost:     conns,
		IdleConnTimeout:     30 * time.Second,
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &lgAPI{base: s.URL, key: key, hc: &http.Client{Timeout: 60 * time.Second, Transport: tr}}
}

// as returns the same client with another credential.
func (a *lgAPI) as(key string) *lgAPI { c := *a; c.key = key; return &c }

// lgHdr are extra request headers.
type lgHdr map[string]string

// lgResp is one answer, read in full.
type lgResp struct {
	Method, Path string
	Status       int
	Header       http.Header
	Body         []byte
}

func (r *lgResp) String() string {
	return fmt.Sprintf("%s %s -> %d %s", r.Method, r.Path, r.Status, lgTrunc(string(r.Body), 600))
}

func lgTrunc(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// send makes one call. body: nil for none; []byte or string sent as is;
// anything else JSON-encoded. A body goes with Content-Type: application/json
// unless hdr names another.
func (a *lgAPI) send(method, path string, body any, hdr lgHdr) (*lgResp, error) {
	var rd io.Reader
	switch v := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(v)
	case string:
		rd = strings.NewReader(v)
	default:
		b, err := json.Marshal(v)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, a.base+path, rd)
	if err != nil {
		return nil, err
	}
	if a.key != "" {
		req.Header.Set("Authorization", "Bearer "+a.key)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := a.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("%s %s: reading the answer: %w", method, path, err)
	}
	recordExchange(req, resp.StatusCode, resp.Header, b)
	return &lgResp{Method: method, Path: path, Status: resp.StatusCode, Header: resp.Header, Body: b}, nil
}

func (a *lgAPI) do(t testing.TB, method, path string, body any, hdr lgHdr) *lgResp {
	t.Helper()
	r, err := a.send(method, path, body, hdr)
	if err != nil {
		t.Fatalf("%v", err)
	}
	if !strings.HasPrefix(r.Header.Get("X-Request-Id"), "req_") {
		t.Errorf("%s: X-Request-Id header missing or not req_…: %q", r, r.Header.Get("X-Request-Id"))
	}
	return r
}

func (a *lgAPI) get(t testing.TB, path string) *lgResp {
	t.Helper()
	return a.do(t, "GET", path, nil, nil)
}

func (a *lgAPI) post(t testing.TB, path string, body any) *lgResp {
	t.Helper()
	return a.do(t, "POST", path, body, nil)
}

// want fails the test unless r has status; on success it decodes the body
// into v (when v is not nil).
func (r *lgResp) want(t testing.TB, status int, v any) {
	t.Helper()
	if r.Status != status {
		t.Fatalf("want %d: %s", status, r)
	}
	if v != nil {
		if err := json.Unmarshal(r.Body, v); err != nil {
			t.Fatalf("%s: decoding: %v", r, err)
		}
	}
}

// lgErr is the error envelope of CONTRACT §4.
type lgErr struct {
	Type      string `json:"type"`
	Code      string `json:"code"`
	Message   string `json:"message"`
	Param     string `json:"param"`
	RequestID string `json:"request_id"`
}

// apiErr decodes the error envelope, or returns ok=false.
func (r *lgResp) apiErr() (lgErr, bool) {
	var env struct {
		Error *lgErr `json:"error"`
	}
	if json.Unmarshal(r.Body, &env) != nil || env.Error == nil {
		return lgErr{}, false
	}
	return *env.Error, true
}

// lgErrType is the error type CONTRACT §4 gives each status.
func lgErrType(status int) string {
	switch {
	case status == 401:
		return "authentication_error"
	case status == 403:
		return "permission_error"
	case status == 429:
		return "rate_limit_error"
	case status >= 500:
		return "api_error"
	}
	return "invalid_request_error"
}

// errMismatch describes how r differs from the error wanted, "" when it
// does not. param "" means the error names no parameter; a param ending in
// "*" is a prefix.
func (r *lgResp) errMismatch(status int, code, param string) string {
	e, ok := r.apiErr()
	if !ok {
		return fmt.Sprintf("want %d %s: not an error envelope: %s", status, code, r)
	}
	var bad []string
	if r.Status != status {
		bad = append(bad, fmt.Sprintf("status %d, want %d", r.Status, status))
	}
	if e.Code != code {
		bad = append(bad, fmt.Sprintf("code %q, want %q", e.Code, code))
	}
	if e.Type != lgErrType(status) {
		bad = append(bad, fmt.Sprintf("type %q, want %q", e.Type, lgErrType(status)))
	}
	if p, prefix := strings.CutSuffix(param, "*"); prefix {
		if !strings.HasPrefix(e.Param, p) {
			bad = append(bad, fmt.Sprintf("param %q, want one starting with %q", e.Param, p))
		}
	} else if e.Param != param {
		bad = append(bad, fmt.Sprintf("param %q, want %q", e.Param, param))
	}
	if !strings.HasPrefix(e.RequestID, "req_") || e.RequestID != r.Header.Get("X-Request-Id") {
		bad = append(bad, fmt.Sprintf("request_id %q, X-Request-Id %q", e.RequestID, r.Header.Get("X-Request-Id")))
	}
	if e.Message == "" {
		bad = append(bad, "empty message")
	}
	if len(bad) == 0 {
		return ""
	}
	return fmt.Sprintf("%s: %s", strings.Join(bad, "; "), r)
}

// wantErr fails the test unless r is the error (status, code, param); the
// harness's wantError then checks the rest of the envelope.
func (r *lgResp) wantErr(t testing.TB, status int, code, param string) {
	t.Helper()
	if m := r.errMismatch(status, code, param); m != "" {
		t.Fatalf("%s", m)
	}
	wantError(t, r.harness(), status, code)
}

// harness converts r to the harness's Response.
func (r *lgResp) harness() *Response {
	h := &Response{Method: r.Method, URL: r.Path, Status: r.Status, Header: r.Header, Body: r.Body, sentCredential: true}
	_ = json.Unmarshal(r.Body, &h.JSON)
	return h
}

// ---------------------------------------------------------------------------
// Objects as the API shows them

type lgFunding struct {
	Object      string  `json:"object"`
	ID          string  `json:"id"`
	Environment string  `json:"environment"`
	Amount      int64   `json:"amount"`
	Currency    string  `json:"currency"`
	Status      string  `json:"status"`
	Reference   string  `json:"reference"`
	CreatedAt   string  `json:"created_at"`
	CompletedAt *string `json:"completed_at"`
}

type lgAddress struct {
	Object      string  `json:"object"`
	ID          string  `json:"id"`
	Environment string  `json:"environment"`
	Network     string  `json:"network"`
	Address     string  `json:"address"`
	Label       string  `json:"label"`
	Status      string  `json:"status"`
	ArchivedAt  *string `json:"archived_at"`
}

type lgRequest struct {
	Object      string            `json:"object"`
	ID          string            `json:"id"`
	Environment string            `json:"environment"`
	Type        string            `json:"type"`
	Amount      int64             `json:"amount"`
	Currency    string            `json:"currency"`
	AddressID   string            `json:"address_id"`
	Status      string            `json:"status"`
	Metadata    map[string]string `json:"metadata"`
	CreatedAt   string            `json:"created_at"`
	CompletedAt *string           `json:"completed_at"`
	FailedAt    *string           `json:"failed_at"`
	CancelledAt *string           `json:"cancelled_at"`
}

type lgBalance struct {
	Object    string `json:"object"`
	Currency  string `json:"currency"`
	Available int64  `json:"available"`
	Pending   int64  `json:"pending"`
}

type lgList struct {
	Object  string            `json:"object"`
	Data    []json.RawMessage `json:"data"`
	HasMore bool              `json:"has_more"`
}

// lgCurrencies are the currencies of CONTRACT §5.
var lgCurrencies = []string{"btc", "usdc", "usdt"}

// ---------------------------------------------------------------------------
// Ledger operations (each checks the happy answer)

// lgSetup makes a partner with status and its admin test key, and a client
// of the backend's shared server with that key.
func lgSetup(t testing.TB, b *Backend, status string) (Tenant, *lgAPI) {
	t.Helper()
	ten := b.NewTenant(t, status)
	return ten, lgClient(t, b.Server(t), ten.Admin.Key, 4)
}

// fund records a deposit through the test helper.
func (a *lgAPI) fund(t testing.TB, currency string, amount int64, status string) lgFunding {
	t.Helper()
	var f lgFunding
	a.post(t, "/v1/test_helpers/funding", map[string]any{"amount": amount, "currency": currency, "status": status}).want(t, 201, &f)
	if f.Object != "funding" || !strings.HasPrefix(f.ID, "fnd_") || f.Amount != amount || f.Currency != currency ||
		f.Status != status || f.Environment != "test" {
		t.Fatalf("funding create: unexpected %+v", f)
	}
	if (status == "completed") != (f.CompletedAt != nil) {
		t.Fatalf("funding create: status %s with completed_at %v", f.Status, f.CompletedAt)
	}
	return f
}

// credit funds amount at once (a completed deposit).
func (a *lgAPI) credit(t testing.TB, currency string, amount int64) lgFunding {
	t.Helper()
	return a.fund(t, currency, amount, "completed")
}

func (a *lgAPI) addAddress(t testing.TB, network, address string) lgAddress {
	t.Helper()
	var ad lgAddress
	a.post(t, "/v1/addresses", map[string]any{"network": network, "address": address}).want(t, 201, &ad)
	if ad.Object != "address" || !strings.HasPrefix(ad.ID, "adr_") || ad.Network != network || ad.Address != address || ad.Status != "active" {
		t.Fatalf("address create: unexpected %+v", ad)
	}
	return ad
}

func lgWithdrawal(amount int64, currency, addressID string) map[string]any {
	return map[string]any{"type": "withdrawal", "amount": amount, "currency": currency, "address_id": addressID}
}

func (a *lgAPI) withdraw(t testing.TB, amount int64, currency, addressID string) *lgResp {
	t.Helper()
	return a.post(t, "/v1/requests", lgWithdrawal(amount, currency, addressID))
}

// mustWithdraw creates a withdrawal that must succeed.
func (a *lgAPI) mustWithdraw(t testing.TB, amount int64, currency, addressID string) lgRequest {
	t.Helper()
	var r lgRequest
	a.withdraw(t, amount, currency, addressID).want(t, 201, &r)
	if r.Object != "request" || !strings.HasPrefix(r.ID, "prq_") || r.Type != "withdrawal" || r.Amount != amount ||
		r.Currency != currency || r.AddressID != addressID || r.Status != "pending" || r.Environment != "test" {
		t.Fatalf("request create: unexpected %+v", r)
	}
	return r
}

// transition posts a bodiless action and, on 200, checks the new status.
func (a *lgAPI) transition(t testing.TB, path, wantStatus string) *lgResp {
	t.Helper()
	r := a.post(t, path, nil)
	if r.Status == 200 {
		var o struct {
			Status string `json:"status"`
		}
		r.want(t, 200, &o)
		if o.Status != wantStatus {
			t.Fatalf("%s: status %q, want %q", r, o.Status, wantStatus)
		}
	}
	return r
}

func (a *lgAPI) balances(t testing.TB) map[string]lgBalance {
	t.Helper()
	var l struct {
		Object  string      `json:"object"`
		Data    []lgBalance `json:"data"`
		HasMore bool        `json:"has_more"`
	}
	a.get(t, "/v1/balances").want(t, 200, &l)
	out := map[string]lgBalance{}
	for _, b := range l.Data {
		if b.Object != "balance" {
			t.Fatalf("GET /v1/balances: element %+v is not a balance", b)
		}
		if _, dup := out[b.Currency]; dup {
			t.Fatalf("GET /v1/balances: %s listed twice", b.Currency)
		}
		if b.Available < 0 || b.Pending < 0 {
			t.Fatalf("GET /v1/balances: negative balance %+v", b)
		}
		out[b.Currency] = b
	}
	if l.Object != "list" || l.HasMore || len(out) != len(lgCurrencies) {
		t.Fatalf("GET /v1/balances: want a list of exactly %v, got %+v", lgCurrencies, l)
	}
	for _, c := range lgCurrencies {
		if _, ok := out[c]; !ok {
			t.Fatalf("GET /v1/balances: %s missing from %+v", c, l.Data)
		}
	}
	return out
}

// wantBalance checks one currency's balance in GET /v1/balances.
func (a *lgAPI) wantBalance(t testing.TB, currency string, available, pending int64) {
	t.Helper()
	b := a.balances(t)[currency]
	if b.Available != available || b.Pending != pending {
		t.Fatalf("%s balance: available %d pending %d, want available %d pending %d", currency, b.Available, b.Pending, available, pending)
	}
}

// listIDs pages through a list (path may carry filters) with page size
// limit and returns every id, checking the list envelope, that ids are
// strictly decreasing (newest first) and that has_more is right.
func (a *lgAPI) listIDs(t testing.TB, path string, limit int) []string {
	t.Helper()
	var ids []string
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}
	cursor := ""
	for page := 0; ; page++ {
		if page > 1000 {
			t.Fatalf("GET %s: more than 1000 pages", path)
		}
		p := fmt.Sprintf("%s%slimit=%d", path, sep, limit)
		if cursor != "" {
			p += "&starting_after=" + url.QueryEscape(cursor)
		}
		var l lgList
		a.get(t, p).want(t, 200, &l)
		if l.Object != "list" || len(l.Data) > limit {
			t.Fatalf("GET %s: not a list page of at most %d: %+v", p, limit, l)
		}
		for _, raw := range l.Data {
			var o struct {
				ID string `json:"id"`
			}
			if err := json.Unmarshal(raw, &o); err != nil || o.ID == "" {
				t.Fatalf("GET %s: element without id: %s", p, raw)
			}
			if n := len(ids); n > 0 && o.ID >= ids[n-1] {
				t.Fatalf("GET %s: %s listed after %s: not newest first (or a duplicate)", p, o.ID, ids[n-1])
			}
			ids = append(ids, o.ID)
		}
		if !l.HasMore {
			return ids
		}
		if len(l.Data) != limit {
			t.Fatalf("GET %s: has_more with a short page of %d", p, len(l.Data))
		}
		cursor = ids[len(ids)-1]
	}
}

// lgSnap is what a caller can see of its ledger: list sizes and balances.
type lgSnap struct {
	Funding, Addresses, Requests int
	Balances                     map[string]lgBalance
}

func (a *lgAPI) snapshot(t testing.TB) lgSnap {
	t.Helper()
	return lgSnap{
		Funding:   len(a.listIDs(t, "/v1/funding", 100)),
		Addresses: len(a.listIDs(t, "/v1/addresses", 100)),
		Requests:  len(a.listIDs(t, "/v1/requests", 100)),
		Balances:  a.balances(t),
	}
}

func (s lgSnap) String() string {
	return fmt.Sprintf("funding %d, addresses %d, requests %d, balances %v", s.Funding, s.Addresses, s.Requests, s.Balances)
}

func (s lgSnap) equal(o lgSnap) bool {
	if s.Funding != o.Funding || s.Addresses != o.Addresses || s.Requests != o.Requests || len(s.Balances) != len(o.Balances) {
		return false
	}
	for c, b := range s.Balances {
		if o.Balances[c] != b {
			return false
		}
	}
	return true
}

// ---------------------------------------------------------------------------
// Addresses

// lgEthKnown are EIP-55 test vectors from the EIP itself, checked without
// this file's own checksum code.
var lgEthKnown = []string{
	"0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
	"0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
	"0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB",
	"0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb",
}

const (
	lgBTCBase58 = "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa"         // P2PKH, mainnet
	lgBTCBech32 = "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4" // BIP-173 P2WPKH
)

// lgEIP55 spells a 40-hex-digit body with its EIP-55 checksum casing.
func lgEIP55(body string) string {
	lower := strings.ToLower(body)
	h := sha3.NewLegacyKeccak256()
	h.Write([]byte(lower))
	sum := h.Sum(nil)
	out := []byte(lower)
	for i, c := range out {
		nib := sum[i/2] >> 4
		if i%2 == 1 {
			nib = sum[i/2] & 0x0f
		}
		if c >= 'a' && c <= 'f' && nib >= 8 {
			out[i] = c - 32
		}
	}
	return "0x" + string(out)
}

// lgEthAddr returns a fresh random ethereum address in mixed-case EIP-55
// spelling (with at least one upper and one lower case letter).
func lgEthAddr() string {
	for {
		b := make([]byte, 20)
		_, _ = rand.Read(b)
		a := lgEIP55(hex.EncodeToString(b))
		if body := a[2:]; body != strings.ToLower(body) && body != strings.ToUpper(body) {
			return a
		}
	}
}

// lgBreakChecksum flips the case of the first letter of a mixed-case
// ethereum address, which breaks its EIP-55 checksum but keeps it mixed case.
func lgBreakChecksum(addr string) string {
	b := []byte(addr)
	for i := 2; i < len(b); i++ {
		switch {
		case b[i] >= 'a' && b[i] <= 'f':
			b[i] -= 32
			return string(b)
		case b[i] >= 'A' && b[i] <= 'F':
			b[i] += 32
			return string(b)
		}
	}
	panic("no letter in " + addr)
}

func TestLedgerEIP55Helper(t *testing.T) {
	t.Parallel()
	for _, a := range lgEthKnown {
		if got := lgEIP55(a[2:]); got != a {
			t.Errorf("lgEIP55(%s) = %s", a, got)
		}
	}
}

// ---------------------------------------------------------------------------
// 1. The lifecycle of funding and requests, and balances

func TestLedgerFlow(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b *Backend) {
		_, api := lgSetup(t, b, "approved")

		for c, bal := range api.balances(t) {
			if bal.Available != 0 || bal.Pending != 0 {
				t.Fatalf("a new partner's %s balance is %+v, want zeros", c, bal)
			}
		}

		// A pending deposit is listed and readable but credits nothing.
		f := api.fund(t, "usdc", 1_000_000, "pending")
		if ids := api.listIDs(t, "/v1/funding", 20); !slices.Equal(ids, []string{f.ID}) {
			t.Fatalf("GET /v1/funding: ids %v, want [%s]", ids, f.ID)
		}
		if ids := api.listIDs(t, "/v1/funding?status=pending", 20); !slices.Equal(ids, []string{f.ID}) {
			t.Fatalf("GET /v1/funding?status=pending: ids %v, want [%s]", ids, f.ID)
		}
		if ids := api.listIDs(t, "/v1/funding?status=completed", 20); len(ids) != 0 {
			t.Fatalf("GET /v1/funding?status=completed: ids %v, want none", ids)
		}
		var got lgFunding
		api.get(t, "/v1/funding/"+f.ID).want(t, 200, &got)
		if got != f {
			t.Fatalf("GET /v1/funding/%s = %+v, want %+v", f.ID, got, f)
		}
		api.wantBalance(t, "usdc", 0, 0)

		// Completing credits available once.
		var done lgFunding
		api.transition(t, "/v1/test_helpers/funding/"+f.ID+"/complete", "completed").want(t, 200, &done)
		if done.ID != f.ID || done.CompletedAt == nil || done.Amount != f.Amount {
			t.Fatalf("completed funding: %+v", done)
		}
		api.wantBalance(t, "usdc", 1_000_000, 0)
		api.post(t, "/v1/test_helpers/funding/"+f.ID+"/complete", nil).wantErr(t, 409, "invalid_state", "")
		api.wantBalance(t, "usdc", 1_000_000, 0)
		api.get(t, "/v1/funding/"+f.ID).want(t, 200, &got)
		if got.Status != "completed" {
			t.Fatalf("funding after a refused second completion: %+v", got)
		}

		ad := api.addAddress(t, "ethereum", lgEthKnown[0])

		// Completed withdrawal: available → pending → gone.
		w1 := api.mustWithdraw(t, 300_000, "usdc", ad.ID)
		api.wantBalance(t, "usdc", 700_000, 300_000)
		var r lgRequest
		api.transition(t, "/v1/test_helpers/requests/"+w1.ID+"/complete", "completed").want(t, 200, &r)
		if r.CompletedAt == nil || r.Amount != w1.Amount {
			t.Fatalf("completed request: %+v", r)
		}
		api.wantBalance(t, "usdc", 700_000, 0)

		// Failed withdrawal: back to available.
		w2 := api.mustWithdraw(t, 200_000, "usdc", ad.ID)
		api.wantBalance(t, "usdc", 500_000, 200_000)
		api.transition(t, "/v1/test_helpers/requests/"+w2.ID+"/fail", "failed").want(t, 200, &r)
		if r.FailedAt == nil {
			t.Fatalf("failed request without failed_at: %+v", r)
		}
		api.wantBalance(t, "usdc", 700_000, 0)

		// Cancelled withdrawal: back to available.
		w3 := api.mustWithdraw(t, 100_000, "usdc", ad.ID)
		api.wantBalance(t, "usdc", 600_000, 100_000)
		api.transition(t, "/v1/requests/"+w3.ID+"/cancel", "cancelled").want(t, 200, &r)
		if r.CancelledAt == nil {
			t.Fatalf("cancelled request without cancelled_at: %+v", r)
		}
		api.wantBalance(t, "usdc", 700_000, 0)

		// Every transition out of a final status is refused and moves nothing.
		final := map[string]string{w1.ID: "completed", w2.ID: "failed", w3.ID: "cancelled"}
		for _, id := range []string{w1.ID, w2.ID, w3.ID} {
			for _, p := range []string{"/v1/requests/" + id + "/cancel", "/v1/test_helpers/requests/" + id + "/complete", "/v1/test_helpers/requests/" + id + "/fail"} {
				api.post(t, p, nil).wantErr(t, 409, "invalid_state", "")
				api.wantBalance(t, "usdc", 700_000, 0)
			}
			api.get(t, "/v1/requests/"+id).want(t, 200, &r)
			if r.Status != final[id] {
				t.Fatalf("request %s: status %s after refused transitions, want %s", id, r.Status, final[id])
			}
		}

		// Metadata at its limits is kept as sent: 20 keys of 40 characters,
		// values of 500.
		meta := map[string]string{}
		for i := 0; i < 20; i++ {
			meta[fmt.Sprintf("%02d%s", i, strings.Repeat("k", 38))] = strings.Repeat(string(rune('a'+i)), 500)
		}
		body := lgWithdrawal(1, "usdc", ad.ID)
		body["metadata"] = meta
		var wm lgRequest
		api.post(t, "/v1/requests", body).want(t, 201, &wm)
		api.get(t, "/v1/requests/"+wm.ID).want(t, 200, &r)
		if !maps.Equal(wm.Metadata, meta) || !maps.Equal(r.Metadata, meta) {
			t.Fatalf("metadata at the limits not kept: created %d keys, read back %d keys", len(wm.Metadata), len(r.Metadata))
		}
		api.transition(t, "/v1/requests/"+wm.ID+"/cancel", "cancelled").want(t, 200, nil)
		api.wantBalance(t, "usdc", 700_000, 0)

		// The list shows the requests, newest first, and filters by status.
		if ids := api.listIDs(t, "/v1/requests", 2); !slices.Equal(ids, []string{wm.ID, w3.ID, w2.ID, w1.ID}) {
			t.Fatalf("GET /v1/requests: %v, want [%s %s %s %s]", ids, wm.ID, w3.ID, w2.ID, w1.ID)
		}
		final[wm.ID] = "cancelled"
		for _, st := range []string{"completed", "failed", "cancelled", "pending"} {
			var want []string
			for _, id := range []string{wm.ID, w3.ID, w2.ID, w1.ID} {
				if final[id] == st {
					want = append(want, id)
				}
			}
			if ids := api.listIDs(t, "/v1/requests?status="+st, 20); !slices.Equal(ids, want) {
				t.Fatalf("GET /v1/requests?status=%s: %v, want %v", st, ids, want)
			}
		}

		// One currency, and an unknown one.
		var bal lgBalance
		api.get(t, "/v1/balances/usdc").want(t, 200, &bal)
		if bal != (lgBalance{Object: "balance", Currency: "usdc", Available: 700_000, Pending: 0}) {
			t.Fatalf("GET /v1/balances/usdc = %+v", bal)
		}
		api.get(t, "/v1/balances/btc").want(t, 200, &bal)
		if bal != (lgBalance{Object: "balance", Currency: "btc"}) {
			t.Fatalf("GET /v1/balances/btc = %+v", bal)
		}
		api.get(t, "/v1/balances/eur").wantErr(t, 404, "resource_missing", "")
	})
}

// ---------------------------------------------------------------------------
// 6. Bad input: refused with the right error, and nothing changes

type lgBadCase struct {
	name   string
	method string
	path   string
	body   any
	hdr    lgHdr
	status int
	code   string
	param  string // "" none; trailing "*" is a prefix
	// altCode is another code accepted in place of code.
	altCode string
	// oversized bodies go through the harness's doOversized.
	oversized bool
}

func TestLedgerBadInput(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b *Backend) {
		_, api := lgSetup(t, b, "approved")
		api.credit(t, "usdc", 1000)
		eth := api.addAddress(t, "ethereum", lgEthKnown[1])
		old := api.addAddress(t, "ethereum", lgEthKnown[2])
		var archived lgAddress
		api.do(t, "DELETE", "/v1/addresses/"+old.ID, nil, nil).want(t, 200, &archived)
		if archived.Status != "archived" || archived.ArchivedAt == nil {
			t.Fatalf("DELETE /v1/addresses/%s answered %+v", old.ID, archived)
		}

		wd := func(kv ...any) map[string]any {
			m := lgWithdrawal(100, "usdc", eth.ID)
			for i := 0; i < len(kv); i += 2 {
				if kv[i+1] == nil {
					delete(m, kv[i].(string))
				} else {
					m[kv[i].(string)] = kv[i+1]
				}
			}
			return m
		}
		meta21 := map[string]string{}
		for i := 0; i < 21; i++ {
			meta21[fmt.Sprintf("k%02d", i)] = "v"
		}
		adr := func(network, address string) map[string]any {
			return map[string]any{"network": network, "address": address}
		}
		valid := wd()
		validJSON, _ := json.Marshal(valid)
		big := append(append([]byte(`{"type":"withdrawal","amount":100,"currency":"usdc","address_id":"`+eth.ID+`","metadata":{"k":"`),
			bytes.Repeat([]byte("a"), 1100*1024)...), `"}}`...)

		cases := []lgBadCase{
			// Addresses.
			{name: "eth short", path: "/v1/addresses", body: adr("ethereum", "0x1234"), status: 400, code: "parameter_invalid", param: "address"},
			{name: "eth non-hex", path: "/v1/addresses", body: adr("ethereum", "0x"+strings.Repeat("g", 40)), status: 400, code: "parameter_invalid", param: "address"},
			{name: "eth no 0x", path: "/v1/addresses", body: adr("ethereum", "00"+strings.ToLower(lgEthKnown[3][2:])), status: 400, code: "parameter_invalid", param: "address"},
			{name: "eth 41 digits", path: "/v1/addresses", body: adr("ethereum", strings.ToLower(lgEthKnown[3])+"a"), status: 400, code: "parameter_invalid", param: "address"},
			{name: "eth bad EIP-55", path: "/v1/addresses", body: adr("ethereum", lgBreakChecksum(lgEthKnown[3])), status: 400, code: "parameter_invalid", param: "address"},
			{name: "btc bad base58 checksum", path: "/v1/addresses", body: adr("bitcoin", "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNb"), status: 400, code: "parameter_invalid", param: "address"},
			{name: "btc bad base58 alphabet", path: "/v1/addresses", body: adr("bitcoin", "1A1zP1eP5QGefi2DMPTfTL5SLmv7Divf0a"), status: 400, code: "parameter_invalid", param: "address"},
			{name: "btc bad bech32", path: "/v1/addresses", body: adr("bitcoin", "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t5"), status: 400, code: "parameter_invalid", param: "address"},
			{name: "btc address on ethereum", path: "/v1/addresses", body: adr("ethereum", lgBTCBase58), status: 400, code: "parameter_invalid", param: "address"},
			{name: "eth address on bitcoin", path: "/v1/addresses", body: adr("bitcoin", lgEthKnown[3]), status: 400, code: "parameter_invalid", param: "address"},
			{name: "network solana", path: "/v1/addresses", body: adr("solana", lgEthKnown[3]), status: 400, code: "parameter_invalid", param: "network"},
			{name: "network missing", path: "/v1/addresses", body: map[string]any{"address": lgEthKnown[3]}, status: 400, code: "parameter_missing", param: "network"},
			{name: "address missing", path: "/v1/addresses", body: map[string]any{"network": "ethereum"}, status: 400, code: "parameter_missing", param: "address"},
			{name: "duplicate lower case", path: "/v1/addresses", body: adr("ethereum", strings.ToLower(eth.Address)), status: 409, code: "address_exists", param: "address"},
			{name: "duplicate upper case", path: "/v1/addresses", body: adr("ethereum", "0x"+strings.ToUpper(eth.Address[2:])), status: 409, code: "address_exists", param: "address"},
			{name: "duplicate same spelling", path: "/v1/addresses", body: adr("ethereum", eth.Address), status: 409, code: "address_exists", param: "address"},

			// Requests: addresses.
			{name: "btc to an ethereum address", path: "/v1/requests", body: wd("currency", "btc"), status: 422, code: "address_not_usable", param: "address_id"},
			{name: "archived address", path: "/v1/requests", body: wd("address_id", old.ID), status: 422, code: "address_not_usable", param: "address_id"},
			{name: "unknown address", path: "/v1/requests", body: wd("address_id", "adr_01m8000000000000000000000"), status: 404, code: "resource_missing", param: "address_id"},
			{name: "address_id missing", path: "/v1/requests", body: wd("address_id", nil), status: 400, code: "parameter_missing", param: "address_id"},
			// Requests: amounts.
			{name: "amount 0", path: "/v1/requests", body: wd("amount", 0), status: 400, code: "parameter_invalid", param: "amount"},
			{name: "amount -5", path: "/v1/requests", body: wd("amount", -5), status: 400, code: "parameter_invalid", param: "amount"},
			{name: "amount 1.5", path: "/v1/requests", body: wd("amount", 1.5), status: 400, code: "parameter_invalid", param: "amount"},
			{name: "amount string", path: "/v1/requests", body: wd("amount", "10"), status: 400, code: "parameter_invalid", param: "amount"},
			{name: "amount over 10^15", path: "/v1/requests", body: wd("amount", int64(1_000_000_000_000_001)), status: 400, code: "parameter_invalid", param: "amount"},
			{name: "amount 10^15 uncovered", path: "/v1/requests", body: wd("amount", int64(1_000_000_000_000_000)), status: 422, code: "insufficient_funds", param: "amount"},
			{name: "amount 1001 uncovered", path: "/v1/requests", body: wd("amount", 1001), status: 422, code: "insufficient_funds", param: "amount"},
			{name: "amount missing", path: "/v1/requests", body: wd("amount", nil), status: 400, code: "parameter_missing", param: "amount"},
			// null is absent or invalid, as the server prefers; not anything else.
			{name: "amount null", path: "/v1/requests", body: `{"type":"withdrawal","amount":null,"currency":"usdc","address_id":"` + eth.ID + `"}`, status: 400, code: "parameter_missing", altCode: "parameter_invalid", param: "amount"},
			// Requests: other fields.
			{name: "type deposit", path: "/v1/requests", body: wd("type", "deposit"), status: 400, code: "parameter_invalid", param: "type"},
			{name: "type missing", path: "/v1/requests", body: wd("type", nil), status: 400, code: "parameter_missing", param: "type"},
			{name: "currency eur", path: "/v1/requests", body: wd("currency", "eur"), status: 400, code: "parameter_invalid", param: "currency"},
			{name: "metadata 21 keys", path: "/v1/requests", body: wd("metadata", meta21), status: 400, code: "parameter_invalid", param: "metadata*"},
			{name: "metadata 41-char key", path: "/v1/requests", body: wd("metadata", map[string]string{strings.Repeat("k", 41): "v"}), status: 400, code: "parameter_invalid", param: "metadata*"},
			{name: "metadata 501-char value", path: "/v1/requests", body: wd("metadata", map[string]string{"k": strings.Repeat("v", 501)}), status: 400, code: "parameter_invalid", param: "metadata*"},
			{name: "metadata number value", path: "/v1/requests", body: wd("metadata", map[string]any{"k": 1}), status: 400, code: "parameter_invalid", param: "metadata*"},
			{name: "unknown field", path: "/v1/requests", body: wd("priority", "high"), status: 400, code: "parameter_unknown", param: "priority"},
			// Bodies.
			{name: "text/plain body", path: "/v1/requests", body: validJSON, hdr: lgHdr{"Content-Type": "text/plain"}, status: 415, code: "unsupported_media_type"},
			{name: "1.1 MiB body", path: "/v1/requests", body: big, oversized: true, status: 413, code: "body_too_large"},
			{name: "invalid JSON", path: "/v1/requests", body: `{"type":"withdrawal",`, status: 400, code: "body_invalid_json"},
			{name: "JSON null", path: "/v1/requests", body: `null`, status: 400, code: "body_invalid_json"},
			{name: "JSON array", path: "/v1/requests", body: `[` + string(validJSON) + `]`, status: 400, code: "body_invalid_json"},
			{name: "funding amount 0", path: "/v1/test_helpers/funding", body: map[string]any{"amount": 0, "currency": "usdc"}, status: 400, code: "parameter_invalid", param: "amount"},
			{name: "funding amount string", path: "/v1/test_helpers/funding", body: map[string]any{"amount": "5", "currency": "usdc"}, status: 400, code: "parameter_invalid", param: "amount"},
			{name: "funding status failed", path: "/v1/test_helpers/funding", body: map[string]any{"amount": 5, "currency": "usdc", "status": "failed"}, status: 400, code: "parameter_invalid", param: "status"},
			{name: "funding currency eur", path: "/v1/test_helpers/funding", body: map[string]any{"amount": 5, "currency": "eur"}, status: 400, code: "parameter_invalid", param: "currency"},
			// Lists.
			{name: "requests limit=0", method: "GET", path: "/v1/requests?limit=0", status: 400, code: "parameter_invalid", param: "limit"},
			{name: "requests limit=101", method: "GET", path: "/v1/requests?limit=101", status: 400, code: "parameter_invalid", param: "limit"},
			{name: "funding limit=101", method: "GET", path: "/v1/funding?limit=101", status: 400, code: "parameter_invalid", param: "limit"},
			{name: "addresses limit=-1", method: "GET", path: "/v1/addresses?limit=-1", status: 400, code: "parameter_invalid", param: "limit"},
			{name: "addresses limit=0", method: "GET", path: "/v1/addresses?limit=0", status: 400, code: "parameter_invalid", param: "limit"},
			{name: "requests starting_after too long", method: "GET", path: "/v1/requests?starting_after=" + strings.Repeat("x", 65), status: 400, code: "parameter_invalid", param: "starting_after"},
			{name: "requests limit=abc", method: "GET", path: "/v1/requests?limit=abc", status: 400, code: "parameter_invalid", param: "limit"},
			{name: "requests status=bogus", method: "GET", path: "/v1/requests?status=bogus", status: 400, code: "parameter_invalid", param: "status"},
			{name: "funding status=cancelled", method: "GET", path: "/v1/funding?status=cancelled", status: 400, code: "parameter_invalid", param: "status"},
			{name: "addresses status=deleted", method: "GET", path: "/v1/addresses?status=deleted", status: 400, code: "parameter_invalid", param: "status"},
			{name: "requests unknown filter", method: "GET", path: "/v1/requests?color=red", status: 400, code: "parameter_unknown", param: "color"},
			{name: "requests cursor of another list", method: "GET", path: "/v1/requests?starting_after=" + eth.ID, status: 400, code: "parameter_invalid", param: "starting_after"},
			{name: "archive an archived address", method: "DELETE", path: "/v1/addresses/" + old.ID, status: 409, code: "invalid_state"},
			{name: "cancel an unknown request", path: "/v1/requests/prq_01m8000000000000000000000/cancel", status: 404, code: "resource_missing"},
			{name: "action with a body field", path: "/v1/test_helpers/funding/fnd_01m8000000000000000000000/complete", body: map[string]any{"force": true}, status: 400, code: "parameter_unknown", param: "force"},
			{name: "requests foreign cursor", method: "GET", path: "/v1/requests?starting_after=prq_01m8000000000000000000000", status: 400, code: "parameter_invalid", param: "starting_after"},
		}

		before := api.snapshot(t)
		if before.Addresses != 2 || before.Funding != 1 || before.Requests != 0 || before.Balances["usdc"].Available != 1000 {
			t.Fatalf("unexpected starting point: %s", before)
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				method := c.method
				if method == "" {
					method = "POST"
				}
				var r *lgResp
				if c.oversized {
					// Sent the harness's way: a server refusing on
					// Content-Length resets a client still writing.
					h := doOversized(t, b.Server(t), method, c.path, H{"Authorization": "Bearer " + api.key, "Content-Type": "application/json"}, string(c.body.([]byte)))
					r = &lgResp{Method: method, Path: c.path, Status: h.Status, Header: h.Header, Body: h.Body}
				} else {
					r = api.do(t, method, c.path, c.body, c.hdr)
				}
				code := c.code
				if e, ok := r.apiErr(); ok && c.altCode != "" && e.Code == c.altCode {
					code = c.altCode
				}
				if m := r.errMismatch(c.status, code, c.param); m != "" {
					t.Errorf("%s", m)
				} else {
					wantError(t, r.harness(), c.status, code)
				}
				if after := api.snapshot(t); !after.equal(before) {
					t.Fatalf("a refused call changed the ledger: before %s, after %s", before, after)
				}
			})
		}
	})
}

// ---------------------------------------------------------------------------
// 7. Test helpers refuse live credentials; scopes

func TestLedgerTestHelpersAndScopes(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b *Backend) {
		ten, api := lgSetup(t, b, "approved")
		live := api.as(b.CreateKey(t, ten.Partner.ID, "live", "secret").Key)

		f := api.fund(t, "usdc", 500, "pending")
		api.credit(t, "usdc", 1000)
		ad := api.addAddress(t, "ethereum", lgEthAddr())
		rq := api.mustWithdraw(t, 100, "usdc", ad.ID)

		t.Run("live key on test helpers", func(t *testing.T) {
			for _, c := range []struct {
				path string
				body any
			}{
				{"/v1/test_helpers/funding", map[string]any{"amount": 5, "currency": "usdc", "status": "completed"}},
				{"/v1/test_helpers/funding/" + f.ID + "/complete", nil},
				{"/v1/test_helpers/funding/fnd_01m8000000000000000000000/complete", nil},
				{"/v1/test_helpers/requests/" + rq.ID + "/complete", nil},
				{"/v1/test_helpers/requests/" + rq.ID + "/fail", nil},
				{"/v1/test_helpers/requests/prq_01m8000000000000000000000/fail", nil},
			} {
				live.post(t, c.path, c.body).wantErr(t, 403, "test_mode_only", "")
			}
			// Nothing moved in either environment.
			var gf lgFunding
			api.get(t, "/v1/funding/"+f.ID).want(t, 200, &gf)
			var gr lgRequest
			api.get(t, "/v1/requests/"+rq.ID).want(t, 200, &gr)
			if gf.Status != "pending" || gr.Status != "pending" {
				t.Fatalf("after refused live helpers: funding %s, request %s; want both pending", gf.Status, gr.Status)
			}
			api.wantBalance(t, "usdc", 900, 100)
			for c, bal := range live.balances(t) {
				if bal.Available != 0 || bal.Pending != 0 {
					t.Fatalf("live %s balance %+v after refused helpers", c, bal)
				}
			}
			if ids := live.listIDs(t, "/v1/funding", 100); len(ids) != 0 {
				t.Fatalf("live funding list %v after refused helpers", ids)
			}
		})

		t.Run("pending partner uses test helpers", func(t *testing.T) {
			_, sandbox := lgSetup(t, b, "pending")
			sandbox.credit(t, "btc", 7)
			sandbox.wantBalance(t, "btc", 7, 0)
		})

		t.Run("read:balances only", func(t *testing.T) {
			k := api.as(b.CreateKey(t, ten.Partner.ID, "test", "secret", "read:balances").Key)
			k.get(t, "/v1/balances").want(t, 200, nil)
			k.get(t, "/v1/balances/usdc").want(t, 200, nil)
			for _, c := range []struct {
				method, path, scope string
				body                any
			}{
				{"POST", "/v1/requests", "write:requests", lgWithdrawal(100, "usdc", ad.ID)},
				{"GET", "/v1/requests", "read:requests", nil},
				{"POST", "/v1/requests/" + rq.ID + "/cancel", "write:requests", nil},
				{"GET", "/v1/funding", "read:funding", nil},
				{"GET", "/v1/funding/" + f.ID, "read:funding", nil},
				{"GET", "/v1/addresses", "read:addresses", nil},
				{"POST", "/v1/addresses", "write:addresses", map[string]any{"network": "ethereum", "address": lgEthAddr()}},
				{"POST", "/v1/test_helpers/funding", "admin:all", map[string]any{"amount": 5, "currency": "usdc"}},
			} {
				r := k.do(t, c.method, c.path, c.body, nil)
				r.wantErr(t, 403, "insufficient_scope", "")
				e, _ := r.apiErr()
				if e.Message != "credential missing required scope: "+c.scope {
					t.Errorf("%s: message %q, want it to name %s", r, e.Message, c.scope)
				}
				if h := r.Header.Get("WWW-Authenticate"); !strings.Contains(h, `error="insufficient_scope"`) || !strings.Contains(h, `scope="`+c.scope+`"`) {
					t.Errorf("%s: WWW-Authenticate %q", r, h)
				}
			}
			api.wantBalance(t, "usdc", 900, 100)
			if n := len(api.listIDs(t, "/v1/requests", 100)); n != 1 {
				t.Fatalf("%d requests after refused calls, want 1", n)
			}
		})

		t.Run("write:requests implies read:requests", func(t *testing.T) {
			k := api.as(b.CreateKey(t, ten.Partner.ID, "test", "secret", "write:requests").Key)
			if ids := k.listIDs(t, "/v1/requests", 20); !slices.Contains(ids, rq.ID) {
				t.Fatalf("GET /v1/requests with write:requests: %v lacks %s", ids, rq.ID)
			}
			k.get(t, "/v1/requests/"+rq.ID).want(t, 200, nil)
			r2 := k.mustWithdraw(t, 50, "usdc", ad.ID)
			k.transition(t, "/v1/requests/"+r2.ID+"/cancel", "cancelled").want(t, 200, nil)
			k.get(t, "/v1/balances").wantErr(t, 403, "insufficient_scope", "")
			k.get(t, "/v1/funding").wantErr(t, 403, "insufficient_scope", "")
			k.get(t, "/v1/addresses").wantErr(t, 403, "insufficient_scope", "")
			api.wantBalance(t, "usdc", 900, 100)
		})
	})
}

// ---------------------------------------------------------------------------
// 8. Audit rows written with the change

type lgAuditRow struct {
	Type, PartnerID, Environment, ObjectID, CredentialID, Actor, RequestID string
}

func lgAuditRows(t testing.TB, b *Backend, partnerID, where string, args ...any) []lgAuditRow {
	t.Helper()
	db := OpenDB(t, b.URL)
	q := b.SQL("SELECT type, partner_id, environment, object_id, credential_id, actor, request_id FROM audit_events WHERE partner_id = ? AND " + where + " ORDER BY id")
	rows, err := db.Query(q, append([]any{partnerID}, args...)...)
	if err != nil {
		t.Fatalf("query audit_events: %v", err)
	}
	defer rows.Close()
	var out []lgAuditRow
	for rows.Next() {
		var r lgAuditRow
		if err := rows.Scan(&r.Type, &r.PartnerID, &r.Environment, &r.ObjectID, &r.CredentialID, &r.Actor, &r.RequestID); err != nil {
			t.Fatalf("scan audit_events: %v", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("audit_events: %v", err)
	}
	return out
}

func TestLedgerAudit(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b *Backend) {
		ten, api := lgSetup(t, b, "approved")
		writer := b.CreateKey(t, ten.Partner.ID, "test", "secret", "write:requests")
		wapi := api.as(writer.Key)
		api.credit(t, "usdt", 1000)
		ad := api.addAddress(t, "ethereum", lgEthAddr())

		// Created with the restricted key, cancelled with the admin key: each
		// row names the credential that made its change.
		created := wapi.withdraw(t, 400, "usdt", ad.ID)
		var rq lgRequest
		created.want(t, 201, &rq)
		cancelled := api.transition(t, "/v1/requests/"+rq.ID+"/cancel", "cancelled")
		cancelled.want(t, 200, nil)

		// Read at once: the rows were committed with the change, before the
		// answer was sent.
		rows := lgAuditRows(t, b, ten.Partner.ID, "object_id = ?", rq.ID)
		want := []lgAuditRow{
			{Type: "request.created", PartnerID: ten.Partner.ID, Environment: "test", ObjectID: rq.ID, CredentialID: writer.ID, Actor: writer.ID, RequestID: created.Header.Get("X-Request-Id")},
			{Type: "request.cancelled", PartnerID: ten.Partner.ID, Environment: "test", ObjectID: rq.ID, CredentialID: ten.Admin.ID, Actor: ten.Admin.ID, RequestID: cancelled.Header.Get("X-Request-Id")},
		}
		if !slices.Equal(rows, want) {
			t.Fatalf("audit rows of %s:\n got %+v\nwant %+v", rq.ID, rows, want)
		}

		// Refused calls leave no lifecycle rows.
		wapi.withdraw(t, 5000, "usdt", ad.ID).wantErr(t, 422, "insufficient_funds", "amount")
		api.post(t, "/v1/requests/"+rq.ID+"/cancel", nil).wantErr(t, 409, "invalid_state", "")
		rows = lgAuditRows(t, b, ten.Partner.ID, "type LIKE ?", "request.%")
		if len(rows) != 2 {
			t.Fatalf("request.* audit rows after refused calls: %+v, want the 2 above", rows)
		}
	})
}
