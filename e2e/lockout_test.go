package e2e

// The failed-authentication lockout: slots reserved before evaluating (so
// concurrent guesses cannot outrun the count), the per-account lockout of
// /login, known keys counted against themselves, and rate-limited requests
// in the access log. On the sqlite backend counts are in memory; on the
// postgres backend they are in Redis when NEXUS_TEST_REDIS_URL is set.

import (
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"

	sdk "github.com/nexus-fintech/nexus/pkg/nexus"
)

// lkMetric reads one unlabelled counter from /metrics.
func lkMetric(t testing.TB, s *Server, name string) int {
	t.Helper()
	r := do(t, "GET", s.URL+"/metrics", bearer(metricsToken), nil)
	m := regexp.MustCompile(`(?m)^` + name + ` (\S+)`).FindSubmatch(r.Body)
	if m == nil {
		t.Fatalf("/metrics has no %s", name)
	}
	f, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		t.Fatal(err)
	}
	return int(f)
}

// lkLogin is a sign-in form of one browser from ip.
type lkLogin struct {
	s      *Server
	ip     string
	csrf   string
	cookie string
}

func lkNewLogin(t testing.TB, s *Server, ip string) *lkLogin {
	t.Helper()
	page := do(t, "GET", s.URL+"/login", H{"X-Forwarded-For": ip}, nil)
	wantStatus(t, page, 200)
	m := flCSRFField.FindSubmatch(page.Body)
	l := &lkLogin{s: s, ip: ip}
	for _, c := range (&http.Response{Header: page.Header}).Cookies() {
		if c.Name == "nexus_csrf" {
			l.cookie = c.Value
		}
	}
	if m == nil || l.cookie == "" {
		t.Fatalf("GET /login: no CSRF token and cookie: %s", page)
	}
	l.csrf = string(m[1])
	return l
}

func (l *lkLogin) post(c *http.Client, email, password string) (*Response, error) {
	form := url.Values{"csrf_token": {l.csrf}, "email": {email}, "password": {password}}
	return flSend(c, "POST", l.s.URL+"/login", H{
		"X-Forwarded-For": l.ip, "Cookie": "nexus_csrf=" + l.cookie,
		"Content-Type": "application/x-www-form-urlencoded",
	}, form.Encode())
}

// Many wrong keys and passwords at once from one address: no more than the
// limit are evaluated (counted by the server's own metrics), the rest are
// refused without evaluation. Before slots were reserved, every one of
// them was evaluated.
func TestLockoutBoundsConcurrentEvaluations(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b *Backend) {
		const limit = 5
		// Enough password-check slots for every attempt at once: only the
		// lockout may bound them.
		s := flNewServer(t, b, "NEXUS_FAILED_AUTH_LIMIT="+strconv.Itoa(limit), "NEXUS_PASSWORD_CHECKS=12",
			"NEXUS_TRUSTED_PROXIES="+sourceIP(t).String())
		hc := flClient(t, 32)
		flWaitWindow(t, 20*time.Second)

		t.Run("keys", func(t *testing.T) {
			ip := flRandomIP()
			before := lkMetric(t, s, "nexus_auth_cache_misses_total")
			statuses := lkBurst(t, 30, func() (*Response, error) {
				return flSend(hc, "GET", s.URL+"/v1/partner", bearer(flFakeKey("test", "sk")).with("X-Forwarded-For", ip), nil)
			})
			evaluated := lkMetric(t, s, "nexus_auth_cache_misses_total") - before
			t.Logf("30 concurrent unknown keys: %d evaluated, answers %v", evaluated, statuses)
			if evaluated > limit {
				t.Errorf("%d unknown keys looked up, want at most the limit %d", evaluated, limit)
			}
			if statuses[401] > limit || statuses[401]+statuses[429] != 30 {
				t.Errorf("answers %v: want at most %d × 401, the rest 429", statuses, limit)
			}
		})
		t.Run("passwords", func(t *testing.T) {
			ip := flRandomIP()
			l := lkNewLogin(t, s, ip)
			before := lkMetric(t, s, "nexus_login_password_checks_total")
			statuses := lkBurst(t, 12, func() (*Response, error) {
				return l.post(hc, "nobody-"+randomHex(4)+"@example.com", "wrong")
			})
			evaluated := lkMetric(t, s, "nexus_login_password_checks_total") - before
			t.Logf("12 concurrent wrong passwords: %d evaluated, answers %v", evaluated, statuses)
			if evaluated > limit {
				t.Errorf("%d passwords checked, want at most the limit %d", evaluated, limit)
			}
			if statuses[401] > limit || statuses[401]+statuses[429]+statuses[503] != 12 {
				t.Errorf("answers %v: want at most %d × 401, the rest 429 (or 503 when every check slot is busy)", statuses, limit)
			}
		})
	})
}

func lkBurst(t *testing.T, n int, send func() (*Response, error)) map[int]int {
	t.Helper()
	var mu sync.Mutex
	statuses := map[int]int{}
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			r, err := send()
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				t.Error(err)
				return
			}
			statuses[r.Status]++
		}()
	}
	close(start)
	wg.Wait()
	return statuses
}

// Ten wrong passwords for one email, from ten addresses, lock that email
// out of /login for its window, wherever the next attempt comes from; an
// unknown email is locked out the same way with the same answer, so the
// lockout tells nothing of which emails are members'.
func TestLoginAccountLockout(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b *Backend) {
		s := flNewServer(t, b, "NEXUS_TRUSTED_PROXIES="+sourceIP(t).String())
		tn := b.NewTenant(t, "approved")
		member := oaCreateMember(t, b, tn.Partner.ID)
		unknown := "nobody-" + randomHex(5) + "@example.test"
		hc := flClient(t, 4)
		var answers []*Response
		for _, email := range []string{member.Email, unknown} {
			for i := 0; i < 10; i++ {
				r, err := lkNewLogin(t, s, flRandomIP()).post(hc, email, "wrong "+strconv.Itoa(i))
				if err != nil {
					t.Fatal(err)
				}
				wantStatus(t, r, 401)
			}
			r, err := lkNewLogin(t, s, flRandomIP()).post(hc, email, "wrong again")
			if err != nil {
				t.Fatal(err)
			}
			wantStatus(t, r, 429)
			if ra := flHeaderInt(t, r, "Retry-After"); ra < 1 || ra > 15*60 {
				t.Errorf("%s: Retry-After %d, want 1..900", r, ra)
			}
			answers = append(answers, r)
			// The right password is refused too while the account is locked.
			if email == member.Email {
				r, err := lkNewLogin(t, s, flRandomIP()).post(hc, email, member.Password)
				if err != nil {
					t.Fatal(err)
				}
				wantStatus(t, r, 429)
			}
		}
		strip := regexp.MustCompile(`value="[^"]*"`)
		a, u := strip.ReplaceAll(answers[0].Body, nil), strip.ReplaceAll(answers[1].Body, nil)
		if string(a) != string(u) {
			t.Errorf("the lockout answer differs for a member's email and an unknown one:\n%s\n---\n%s", a, u)
		}
		// Another member signs in from the same addresses' neighbourhood.
		other := oaCreateMember(t, b, tn.Partner.ID)
		r, err := lkNewLogin(t, s, flRandomIP()).post(hc, other.Email, other.Password)
		if err != nil {
			t.Fatal(err)
		}
		if r.Status != 200 && r.Status != 303 {
			t.Errorf("another account's sign-in: %s", r)
		}
	})
}

// A known key refused for its status (revoked here) counts against the key,
// not against the client address: many tenants may share one NAT. Unknown
// keys still count against the address.
func TestLockoutKnownKeyCountsAgainstKey(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b *Backend) {
		s := flNewServer(t, b, "NEXUS_FAILED_AUTH_LIMIT=5", "NEXUS_TRUSTED_PROXIES="+sourceIP(t).String())
		tn := b.NewTenant(t, "approved")
		k := b.CreateKey(t, tn.Partner.ID, "test", "secret")
		wantStatus(t, do(t, "POST", s.URL+"/v1/api_keys/"+k.ID+"/revoke", bearer(tn.Admin.Key), nil), 200)
		nat := flRandomIP()
		from := func(h H) H { return h.with("X-Forwarded-For", nat) }
		flWaitWindow(t, 15*time.Second)
		for i := 0; i < 5; i++ {
			wantError(t, partnerAs(t, s, from(bearer(k.Key))), 401, "api_key_revoked")
		}
		// The address is not locked: another tenant behind it works.
		wantStatus(t, partnerAs(t, s, from(bearer(tn.Admin.Key))), 200)
		// The revoked key itself is.
		wantError(t, partnerAs(t, s, from(bearer(k.Key))), 429, "too_many_failed_attempts")
		wantError(t, partnerAs(t, s, bearer(k.Key).with("X-Forwarded-For", flRandomIP())), 429, "too_many_failed_attempts")
		// Unknown keys still lock the address.
		for i := 0; i < 5; i++ {
			wantError(t, partnerAs(t, s, from(bearer(flFakeKey("test", "sk")))), 401, "invalid_api_key")
		}
		wantError(t, partnerAs(t, s, from(bearer(tn.Admin.Key))), 429, "too_many_failed_attempts")
	})
}

// A request refused by its credential's rate limit was authenticated: the
// access log records it with status 429.
func TestRateLimitedRequestsLogged(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b *Backend) {
		s := flNewServer(t, b)
		const limit = 20
		p := flPartner(t, b, limit)
		k := b.CreateKey(t, p.ID, "test", "secret")
		admin := b.CreateKey(t, p.ID, "test", "secret")
		flWaitWindow(t, 15*time.Second)
		var limited *Response
		for i := 0; i < limit+2; i++ {
			if r := partnerAs(t, s, bearer(k.Key)); r.Status == 429 {
				limited = r
			}
		}
		if limited == nil {
			t.Fatal("no request was rate limited")
		}
		wantError(t, limited, 429, "rate_limited")
		id := limited.Header.Get("X-Request-Id")
		var found *auEvent
		// The admin key has its own limit of 20: one look every 600 ms.
		if _, ok := poll(10*time.Second, 600*time.Millisecond, func() bool {
			for _, e := range auListAll(t, s, admin.Key, url.Values{"credential_id": {k.ID}}, 100) {
				if e.RequestID == id {
					found = &e
					return true
				}
			}
			return false
		}); !ok {
			t.Fatalf("the 429 (request %s) is not in the access log", id)
		}
		if found.Type != "api.access" || found.Status != 429 || found.Path != "/v1/partner" || found.CredentialID != k.ID {
			t.Errorf("access row of the 429: %+v", *found)
		}
	})
}

// A platform service acts for many partners: its requests count against
// each partner's limit separately, per (service, partner), never one
// partner's count shared by all.
func TestPlatformServiceRateLimitPerPartner(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b *Backend) {
		// The keys are what is tested, not the store: without Redis the
		// count is exact however loaded the machine (a Redis call past its
		// 200 ms bound degrades to a local count, which may let one more
		// through; TestFleet* cover the shared count).
		s := flNewServer(t, b, "NEXUS_REDIS_URL=")
		const limit = 3
		a, c := flPartner(t, b, limit), flPartner(t, b, limit)
		svcID, _, svcKey := stPlatform(t, b, "internal:funding")
		fund := func(partnerID string) *Response {
			tok := stMintPlatform(t, sdk.PlatformTokenParams{ServiceID: svcID, PrivateKey: svcKey, Partner: partnerID, Environment: "test"})
			return do(t, "POST", s.URL+"/internal/v1/funding", bearer(tok), map[string]any{"amount": 1, "currency": "usdc"})
		}
		flWaitWindow(t, 15*time.Second)
		for i := 0; i < limit; i++ {
			wantStatus(t, fund(a.ID), 201)
		}
		flWantLimited(t, fund(a.ID), limit)
		// Partner C's count is its own.
		r := fund(c.ID)
		wantStatus(t, r, 201)
		if rem := flHeaderInt(t, r, "RateLimit-Remaining"); rem != limit-1 {
			t.Errorf("the service's first request for another partner: RateLimit-Remaining %d, want %d", rem, limit-1)
		}
	})
}
