package e2e

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Each test talks to the servers from an address of its own in 127.0.0.0/8
// (Linux routes the whole range to the loopback interface), because the
// server counts failed authentications per client IP (CONTRACT §8: after 10
// in a minute every credentialed request from that IP gets 429): tests that
// fail on purpose must not lock each other out, nor the next run, whose
// counts a shared Redis may still hold. Each run draws its own /16.
var sources struct {
	sync.Mutex
	enabled bool    // binding 127.x.y.z works here
	base    [1]byte // this run's 127.base.0.0/16
	next    uint32
	byTest  map[testing.TB]*source
}

type source struct {
	ip     netip.Addr
	client *http.Client
}

// initSources decides whether tests can bind their own loopback addresses.
func initSources() {
	sources.byTest = map[testing.TB]*source{}
	var r [1]byte
	_, _ = rand.Read(r[:])
	sources.base[0] = 16 + r[0]%224 // 127.16.0.0 – 127.239.255.255
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return
	}
	defer ln.Close()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, sources.base[0], 0, 1)}, Timeout: time.Second}
	if c, err := d.Dial("tcp", ln.Addr().String()); err == nil {
		c.Close()
		sources.enabled = true
	}
}

// sourceIP is the client address of t's requests (127.0.0.1 where only that
// one can be bound).
func sourceIP(t testing.TB) netip.Addr { return sourceFor(t).ip }

func sourceFor(t testing.TB) *source {
	sources.Lock()
	defer sources.Unlock()
	if s := sources.byTest[t]; s != nil {
		return s
	}
	ip := netip.AddrFrom4([4]byte{127, 0, 0, 1})
	if sources.enabled {
		sources.next++
		n := sources.next
		ip = netip.AddrFrom4([4]byte{127, sources.base[0], byte(n >> 8), byte(n)})
		if byte(n) == 0 {
			sources.next++
			ip = ip.Next()
		}
	}
	dialer := &net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: ip.AsSlice()}}
	tr := &http.Transport{
		DialContext:         dialer.DialContext,
		MaxIdleConnsPerHost: 16,
		IdleConnTimeout:     5 * time.Second, // below the server's 15 s read timeout
	}
	s := &source{ip: ip, client: &http.Client{Timeout: 20 * time.Second, Transport: tr}}
	sources.byTest[t] = s
	t.Cleanup(func() {
		tr.CloseIdleConnections()
		sources.Lock()
		delete(sources.byTest, t)
		sources.Unlock()
	})
	return s
}

// dialFrom opens a raw connection to addr from t's source address.
func dialFrom(t testing.TB, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: sourceIP(t).AsSlice()}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	return c
}

// H is a request's headers.
type H map[string]string

// bearer is the usual credential header.
func bearer(key string) H { return H{"Authorization": "Bearer " + key} }

// lines is a header value sent as one header line per value: HTTP lets a
// header repeat, and proxies add lines of their own.
func lines(values ...string) string { return strings.Join(values, "\n") }

// with returns h plus more headers.
func (h H) with(kv ...string) H {
	out := H{}
	for k, v := range h {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i]] = kv[i+1]
	}
	return out
}

// Response is an answer, its body decoded when it is a JSON object.
type Response struct {
	Method, URL string
	Status      int
	Header      http.Header
	Body        []byte
	JSON        map[string]any

	sentCredential bool
}

func (r *Response) String() string {
	return fmt.Sprintf("%s %s → %d %s", r.Method, r.URL, r.Status, tail(string(r.Body), 3000))
}

// Get walks a dotted path ("error.code", "data.0.id") through the JSON body.
func (r *Response) Get(path string) any {
	var v any = r.JSON
	for _, part := range strings.Split(path, ".") {
		switch x := v.(type) {
		case map[string]any:
			v = x[part]
		case []any:
			i, err := strconv.Atoi(part)
			if err != nil || i < 0 || i >= len(x) {
				return nil
			}
			v = x[i]
		default:
			return nil
		}
	}
	return v
}

// Str is Get for a string ("" when absent or not a string).
func (r *Response) Str(path string) string {
	s, _ := r.Get(path).(string)
	return s
}

// Strs is Get for an array of strings.
func (r *Response) Strs(path string) []string {
	arr, _ := r.Get(path).([]any)
	out := make([]string, 0, len(arr))
	for _, v := range arr {
		s, _ := v.(string)
		out = append(out, s)
	}
	return out
}

// Data is the data array of a list answer.
func (r *Response) Data() []map[string]any {
	arr, _ := r.Get("data").([]any)
	out := make([]map[string]any, 0, len(arr))
	for _, v := range arr {
		m, _ := v.(map[string]any)
		out = append(out, m)
	}
	return out
}

// Decode unmarshals the body into v.
func (r *Response) Decode(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("decoding %s: %v", r, err)
	}
}

// do sends a request. body: nil for none; string or []byte sent as is (set
// Content-Type in h); anything else as JSON with Content-Type
// application/json. Every answer must carry X-Request-Id.
func do(t testing.TB, method, url string, h H, body any) *Response {
	t.Helper()
	var rd io.Reader
	ctype := ""
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			t.Fatalf("encoding the request body: %v", err)
		}
		rd, ctype = bytes.NewReader(data), "application/json"
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	for k, v := range h {
		// A value of several lines (see lines) is one header line each.
		req.Header.Del(k)
		for _, line := range strings.Split(v, "\n") {
			req.Header.Add(k, line)
		}
	}
	resp, err := sourceFor(t).client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the answer: %v", method, url, err)
	}
	r := &Response{Method: method, URL: url, Status: resp.StatusCode, Header: resp.Header, Body: data}
	checkContract(t, req, resp.StatusCode, resp.Header, data)
	for _, k := range []string{"Authorization", "X-API-Key", "X-Partner-API-Key"} {
		if req.Header.Get(k) != "" {
			r.sentCredential = true
		}
	}
	_ = json.Unmarshal(data, &r.JSON)
	if !strings.HasPrefix(resp.Header.Get("X-Request-Id"), "req_") {
		t.Errorf("%s: X-Request-Id header missing or not req_…: %q", r, resp.Header.Get("X-Request-Id"))
	}
	return r
}

// wantStatus fails the test unless r has status want.
func wantStatus(t testing.TB, r *Response, want int) {
	t.Helper()
	if r.Status != want {
		t.Fatalf("want status %d, got %s", want, r)
	}
}

// errorTypes is CONTRACT §4's status → type.
func errorType(status int) string {
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

// wantError checks an error answer against CONTRACT §4: status, the
// envelope and its type for the status, code, a message, request_id equal to
// X-Request-Id, nothing but the known fields, and for a 401 the
// WWW-Authenticate challenge. It returns the error object.
func wantError(t testing.TB, r *Response, status int, code string) map[string]any {
	t.Helper()
	e, _ := r.Get("error").(map[string]any)
	if r.Status != status || e == nil || e["code"] != code {
		t.Fatalf("want %d %s, got %s", status, code, r)
	}
	if got := e["type"]; got != errorType(status) {
		t.Errorf("%s: error.type %v, want %s", r, got, errorType(status))
	}
	if msg, _ := e["message"].(string); msg == "" {
		t.Errorf("%s: error.message is empty", r)
	}
	rid, _ := e["request_id"].(string)
	if !strings.HasPrefix(rid, "req_") || rid != r.Header.Get("X-Request-Id") {
		t.Errorf("%s: error.request_id %q must be the X-Request-Id %q", r, rid, r.Header.Get("X-Request-Id"))
	}
	for k := range e {
		if !slices.Contains([]string{"type", "code", "message", "param", "request_id"}, k) {
			t.Errorf("%s: unexpected error field %q", r, k)
		}
	}
	if p, ok := e["param"]; ok {
		if s, _ := p.(string); s == "" {
			t.Errorf("%s: error.param present but empty", r)
		}
	}
	if len(r.JSON) != 1 {
		t.Errorf("%s: the envelope must hold only \"error\"", r)
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("%s: Content-Type %q, want application/json", r, ct)
	}
	wa := r.Header.Get("WWW-Authenticate")
	if status == 401 {
		if !strings.HasPrefix(wa, `Bearer realm="nexus"`) {
			t.Errorf("%s: WWW-Authenticate %q, want Bearer realm=\"nexus\"…", r, wa)
		}
		if hasInvalid := strings.Contains(wa, `error="invalid_token"`); hasInvalid != r.sentCredential {
			t.Errorf("%s: WWW-Authenticate %q: error=\"invalid_token\" expected exactly when a credential was sent (sent: %v)", r, wa, r.sentCredential)
		}
	}
	return e
}

// wantParam checks the error's param.
func wantParam(t testing.TB, r *Response, e map[string]any, param string) {
	t.Helper()
	if e["param"] != param {
		t.Errorf("%s: error.param %v, want %q", r, e["param"], param)
	}
}

// sameSet reports whether a and b hold the same strings in any order.
func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	sort.Strings(a)
	sort.Strings(b)
	return slices.Equal(a, b)
}

// readScopes is every read:* scope (CONTRACT §3).
var readScopes = []string{"read:balances", "read:funding", "read:addresses", "read:requests", "read:usage"}

// poll calls check every interval until it returns true or within passes;
// it returns how long that took and whether it happened.
func poll(within, interval time.Duration, check func() bool) (time.Duration, bool) {
	start := time.Now()
	for {
		if check() {
			return time.Since(start), true
		}
		if time.Since(start) > within {
			return time.Since(start), false
		}
		time.Sleep(interval)
	}
}

// apiCreateKey creates a key through POST /v1/api_keys and checks the 201.
func apiCreateKey(t testing.TB, s *Server, adminKey string, body map[string]any) Key {
	t.Helper()
	r := do(t, "POST", s.URL+"/v1/api_keys", bearer(adminKey), body)
	wantStatus(t, r, 201)
	var k Key
	r.Decode(t, &k)
	if k.Object != "api_key" || !strings.HasPrefix(k.ID, "key_") || !strings.HasPrefix(k.Key, "nx_") {
		t.Fatalf("create answer is not a key with its plaintext: %s", r)
	}
	return k
}

// partnerAs is GET /v1/partner with h.
func partnerAs(t testing.TB, s *Server, h H) *Response {
	t.Helper()
	return do(t, "GET", s.URL+"/v1/partner", h, nil)
}

// doOversized sends a request whose body the server should refuse unread
// (413). A server that refuses on Content-Length closes the connection
// while a client would still be writing, and the client would see a reset
// instead of the answer; so the headers go first, and the body only if no
// answer comes within 2 s.
func doOversized(t testing.TB, s *Server, method, path string, h H, body string) *Response {
	t.Helper()
	conn := dialFrom(t, s.Addr)
	defer conn.Close()
	var req strings.Builder
	fmt.Fprintf(&req, "%s %s HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\nConnection: close\r\n", method, path, s.Addr, len(body))
	for k, v := range h {
		fmt.Fprintf(&req, "%s: %s\r\n", k, v)
	}
	req.WriteString("\r\n")
	if _, err := io.WriteString(conn, req.String()); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	_ = conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := br.Peek(1); err != nil {
		go func() { _, _ = io.WriteString(conn, body) }()
	}
	_ = conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("%s %s with a %d-byte body: no answer: %v", method, path, len(body), err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	r := &Response{Method: method, URL: s.URL + path, Status: resp.StatusCode, Header: resp.Header, Body: data, sentCredential: true}
	_ = json.Unmarshal(data, &r.JSON)
	if !strings.HasPrefix(resp.Header.Get("X-Request-Id"), "req_") {
		t.Errorf("%s: X-Request-Id header missing", r)
	}
	return r
}
