package e2e

// Secret scanning (issue 16, section 4): POST /secret-scanning/github, as
// GitHub's partner program calls it. Helpers of this file are prefixed ss.

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	sdk "github.com/nexus-fintech/nexus/pkg/nexus"
)

// ssSigner is a code host's signing key, and the key file a server reads.
type ssSigner struct {
	id   string
	key  *ecdsa.PrivateKey
	file string // NEXUS_SECRET_SCANNING_KEYS=…
}

// ssNewSigner writes a key file in GitHub's format holding a fresh key (and
// an unrelated one, as GitHub lists old and current keys).
func ssNewSigner(t testing.TB) ssSigner {
	t.Helper()
	pemOf := func(k *ecdsa.PrivateKey) string {
		der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
		if err != nil {
			t.Fatal(err)
		}
		return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	}
	gen := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	s := ssSigner{id: randomHex(32), key: gen()}
	doc := map[string]any{"public_keys": []map[string]any{
		{"key_identifier": randomHex(32), "key": pemOf(gen()), "is_current": false},
		{"key_identifier": s.id, "key": pemOf(s.key), "is_current": true},
	}}
	data, _ := json.Marshal(doc)
	path := filepath.Join(t.TempDir(), "secret-scanning-keys.json")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	s.file = "NEXUS_SECRET_SCANNING_KEYS=" + path
	return s
}

func (s ssSigner) sign(t testing.TB, body []byte) string {
	t.Helper()
	d := sha256.Sum256(body)
	sig, err := ecdsa.SignASN1(rand.Reader, s.key, d[:])
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(sig)
}

type ssFinding struct {
	Token  string `json:"token"`
	Type   string `json:"type"`
	URL    string `json:"url"`
	Source string `json:"source"`
}

type ssLabel struct {
	TokenHash string `json:"token_hash"`
	TokenType string `json:"token_type"`
	Label     string `json:"label"`
}

// ssPost sends a signed report (keyID and sig override the signature when
// not empty; "-" leaves the header out).
func ssPost(t testing.TB, s *Server, body []byte, keyID, sig string) *Response {
	t.Helper()
	h := H{"Content-Type": "application/json"}
	if keyID != "-" {
		h["Github-Public-Key-Identifier"] = keyID
	}
	if sig != "-" {
		h["Github-Public-Key-Signature"] = sig
	}
	return do(t, "POST", s.URL+"/secret-scanning/github", h, body)
}

func (s ssSigner) report(t testing.TB, srv *Server, fs []ssFinding) []ssLabel {
	t.Helper()
	body, _ := json.Marshal(fs)
	r := ssPost(t, srv, body, s.id, s.sign(t, body))
	wantStatus(t, r, 200)
	var ls []ssLabel
	if err := json.Unmarshal(r.Body, &ls); err != nil || len(ls) != len(fs) {
		t.Fatalf("report of %d: %s", len(fs), r)
	}
	if strings.Contains(string(r.Body), "nx_") {
		t.Errorf("the answer echoes a token: %s", r)
	}
	for i, l := range ls {
		d := sha256.Sum256([]byte(fs[i].Token))
		if l.TokenHash != hex.EncodeToString(d[:]) || l.TokenType != fs[i].Type {
			t.Errorf("label %d: %+v, want the sha256 of %q and type %q", i, l, fs[i].Token, fs[i].Type)
		}
	}
	return ls
}

func ssFind(tok, typ string) ssFinding {
	return ssFinding{Token: tok, Type: typ, URL: "https://github.com/octocat/leaky/blob/abc123/config/" + randomHex(4) + ".env", Source: "content"}
}

// A signed report revokes every real secret that still works, labels it
// true_positive and tells its owner; unsigned or badly signed reports change
// nothing; other partners' credentials are untouched.
func TestSecretScanning(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b *Backend) {
		signer := ssNewSigner(t)
		st := &oaStack{b: b, s: b.NewServer(t, oaTrustedProxies, signer.file), ip: oaFakeIP(),
			owner: b.NewTenant(t, "approved"), user: b.NewTenant(t, "approved")}
		st.member = oaCreateMember(t, b, st.user.Partner.ID)
		victim, owner := st.user, st.owner
		bystander := b.NewTenant(t, "approved")

		sk := b.CreateKey(t, victim.Partner.ID, "test", "secret", "read")
		pk := b.CreateKey(t, victim.Partner.ID, "test", "publishable")
		revoked := b.CreateKey(t, victim.Partner.ID, "test", "secret")
		wantStatus(t, st.api(t, "POST", "/v1/api_keys/"+revoked.ID+"/revoke", victim.Admin.Key, nil), 200)
		liveSK := b.CreateKey(t, victim.Partner.ID, "live", "secret")
		hs := stHS256(t, st.s, victim.Admin.Key)
		svcTok := func() string {
			return stMint(t, sdk.ServiceTokenParams{CredentialID: hs.ID, Secret: hs.Secret, Lifetime: 10 * time.Minute})
		}
		redirect := "https://app.example/cb"
		app := st.createClient(t, "confidential", []string{redirect}, "read:balances")
		leakyApp := st.createClient(t, "confidential", []string{redirect}, "read:balances")
		ua := st.signedIn(t, app, redirect)
		tk := st.tokensFor(t, ua, app, redirect)
		tk2 := st.tokensFor(t, ua, leakyApp, redirect)
		keep := st.tokensFor(t, ua, app, redirect) // another grant of the same app

		works := func(what, cred string) {
			t.Helper()
			if r := st.api(t, "GET", "/v1/partner", cred, nil); r.Status != 200 {
				t.Fatalf("%s: %s", what, r)
			}
		}
		all := map[string]string{"secret key": sk.Key, "publishable key": pk.Key, "live key": liveSK.Key,
			"service token": svcTok(), "access token": tk.Access, "leaky app's token": tk2.Access, "other grant": keep.Access,
			"bystander": bystander.Admin.Key}
		for what, cred := range all {
			works(what, cred)
		}

		report := []ssFinding{
			ssFind(sk.Key, "nexus_test_secret_key"),
			ssFind(pk.Key, "nexus_test_publishable_key"),
			ssFind(revoked.Key, "nexus_test_secret_key"),
			ssFind(liveSK.Key, "nexus_live_secret_key"),
			ssFind(hs.Secret, "nexus_test_signing_secret"),
			ssFind(tk.Refresh, "nexus_test_oauth_refresh_token"),
			ssFind(leakyApp.ClientSecret, "nexus_test_oauth_client_secret"),
			ssFind(flFakeKey("test", "sk"), "nexus_test_secret_key"),                  // well-formed, never issued
			ssFind(lastCharChanged(sk.Key), "nexus_test_secret_key"),                  // checksum broken
			ssFind("ghp_notnexus0123456789abcdefghijklmnop", "nexus_test_secret_key"), // not Nexus at all
			ssFind(sk.Key, "nexus_test_secret_key"),                                   // the same key, found twice
		}
		want := []string{"true_positive", "true_positive", "true_positive", "true_positive", "true_positive",
			"true_positive", "true_positive", "false_positive", "false_positive", "false_positive", "true_positive"}
		body, _ := json.Marshal(report)

		// Refusals: 401 invalid_signature, and nothing changes.
		other := ssNewSigner(t)
		tampered := append([]byte(nil), body...)
		tampered[len(tampered)-3] ^= 1
		for _, c := range []struct{ what, id, sig string }{
			{"unsigned", "-", "-"},
			{"no signature", signer.id, "-"},
			{"no key identifier", "-", signer.sign(t, body)},
			{"unknown key", other.id, other.sign(t, body)},
			{"signed by another key", signer.id, other.sign(t, body)},
			{"signature of another body", signer.id, signer.sign(t, tampered)},
			{"not base64", signer.id, "%%%"},
			{"empty signature", signer.id, ""},
		} {
			r := ssPost(t, st.s, body, c.id, c.sig)
			wantError(t, r, 401, "invalid_signature")
			if got := r.Header.Get("WWW-Authenticate"); got != `Bearer realm="nexus"` {
				t.Errorf("%s: WWW-Authenticate %q", c.what, got)
			}
		}
		// Signed, but not a report.
		for _, bad := range []string{`{"token": "x"}`, `[{"token": 1}]`, `not json`} {
			wantError(t, ssPost(t, st.s, []byte(bad), signer.id, signer.sign(t, []byte(bad))), 400, "body_invalid_json")
		}
		big := make([]ssFinding, 1001)
		for i := range big {
			big[i] = ssFind("x", "t")
		}
		bigBody, _ := json.Marshal(big)
		wantError(t, ssPost(t, st.s, bigBody, signer.id, signer.sign(t, bigBody)), 400, "parameter_invalid")
		for what, cred := range all {
			works(what, cred)
		}

		// The report.
		labels := signer.report(t, st.s, report)
		for i, l := range labels {
			if l.Label != want[i] {
				t.Errorf("finding %d (%s): %s, want %s", i, report[i].Type, l.Label, want[i])
			}
		}

		// Refused at once on this instance (others: the test below).
		wantError(t, st.api(t, "GET", "/v1/partner", sk.Key, nil), 401, "api_key_revoked")
		wantError(t, st.api(t, "GET", "/v1/partner", liveSK.Key, nil), 401, "api_key_revoked")
		wantError(t, st.api(t, "GET", "/v1/partner", svcTok(), nil), 401, "invalid_token")
		wantError(t, st.api(t, "GET", "/v1/partner", tk.Access, nil), 401, "token_revoked")
		oaWantOAuthError(t, st.refresh(t, app, tk.Refresh, ""), 400, "invalid_grant")
		wantError(t, st.api(t, "GET", "/v1/partner", tk2.Access, nil), 401, "token_revoked")
		oaWantOAuthError(t, st.refresh(t, leakyApp, tk2.Refresh, ""), 401, "invalid_client")
		if g := st.api(t, "GET", "/v1/oauth_clients/"+leakyApp.ID, owner.Admin.Key, nil); g.Str("status") != "deleted" {
			t.Errorf("the app whose secret leaked: %s", g)
		}
		// Untouched: the publishable key, the other grant of the app, the
		// app itself, the partners' admin keys, the bystander.
		works("publishable key", pk.Key)
		works("other grant", keep.Access)
		works("victim's admin key", victim.Admin.Key)
		works("app owner's admin key", owner.Admin.Key)
		works("bystander", bystander.Admin.Key)
		if g := st.api(t, "GET", "/v1/oauth_clients/"+app.ID, owner.Admin.Key, nil); g.Str("status") != "active" {
			t.Errorf("the app whose token leaked: %s", g)
		}

		// The owners hear of it: one credential.leaked per true positive
		// finding, in the credential's environment, with the URL.
		leaked := func(key string) map[string]auEvent {
			m := map[string]auEvent{}
			for _, e := range auListAll(t, st.s, key, url.Values{"type": {"credential.leaked"}}, 100) {
				var d struct{ URL string }
				_ = json.Unmarshal(e.Data, &d)
				if e.Actor != "github-secret-scanning" || e.CredentialID != "" {
					t.Errorf("credential.leaked event by %q (credential %q), want github-secret-scanning", e.Actor, e.CredentialID)
				}
				m[d.URL] = e
			}
			return m
		}
		evs := leaked(victim.Admin.Key)
		for i, f := range report {
			if want[i] != "true_positive" || strings.Contains(f.Type, "live") || strings.Contains(f.Type, "client_secret") {
				continue
			}
			e, ok := evs[f.URL]
			if !ok {
				t.Errorf("no credential.leaked event for finding %d (%s at %s): %v", i, f.Type, f.URL, evs)
				continue
			}
			var d struct {
				Source, Kind, Action string
				Revoked              bool
			}
			_ = json.Unmarshal(e.Data, &d)
			wantRevoked := i == 0 || i == 4 || i == 5 || i == 10 // 10: the same key, same report
			if d.Source != "content" || d.Revoked != wantRevoked || d.Kind == "" || d.Action == "" || e.Environment != "test" {
				t.Errorf("credential.leaked for finding %d (%s): %+v %s", i, f.Type, e, e.Data)
			}
		}
		if len(evs) != 6 {
			t.Errorf("victim's test environment: %d credential.leaked events, want 6: %v", len(evs), evs)
		}
		if e, ok := evs[report[0].URL]; ok && e.ObjectID != sk.ID {
			t.Errorf("credential.leaked of the secret key names %s", e.ObjectID)
		}
		if n := len(leaked(b.CreateKey(t, victim.Partner.ID, "live", "secret").Key)); n != 1 {
			t.Errorf("victim's live environment: %d credential.leaked events, want 1", n)
		}
		if ev := leaked(owner.Admin.Key); len(ev) != 1 || ev[report[6].URL].ObjectID != leakyApp.ID {
			t.Errorf("app owner's events: %v, want one for the client secret", ev)
		}
		if n := len(leaked(bystander.Admin.Key)); n != 0 {
			t.Errorf("bystander: %d credential.leaked events", n)
		}

		// Reported again: the same labels, nothing more to revoke.
		again := signer.report(t, st.s, report[:1])
		if again[0].Label != "true_positive" {
			t.Errorf("the revoked key reported again: %+v", again[0])
		}
		works("victim's admin key", victim.Admin.Key)
	})
}

// A reported key is refused by every instance within a second; serial,
// since it measures that second. It also logs how long a report of 1000
// tokens takes over HTTP.
func TestSecretScanningAcrossInstances(t *testing.T) {
	forEachBackendSerial(t, func(t *testing.T, b *Backend) {
		signer := ssNewSigner(t)
		servers := []*Server{b.NewServer(t, signer.file), b.NewServer(t, signer.file)}
		tn := b.NewTenant(t, "approved")
		leaked := b.CreateKey(t, tn.Partner.ID, "test", "secret", "read")
		for _, s := range servers {
			for range 3 {
				wantStatus(t, partnerAs(t, s, bearer(leaked.Key)), 200)
			}
		}
		labels := signer.report(t, servers[0], []ssFinding{ssFind(leaked.Key, "nexus_test_secret_key")})
		committed := time.Now()
		if labels[0].Label != "true_positive" {
			t.Fatalf("labels: %+v", labels)
		}
		took, last := watchRefusal(t, servers, bearer(leaked.Key), committed)
		for i := range servers {
			if took[i] < 0 || took[i] >= time.Second {
				t.Errorf("instance %d refused the leaked key after %v, want < 1s", i, took[i])
			} else {
				wantStatus(t, last[i], 401)
			}
			t.Logf("%s: instance %d refused the leaked key %s after the report was answered", b.Name, i, took[i].Round(time.Millisecond))
		}

		// 1000 findings: 100 real keys, 900 well-formed unknown ones.
		fs := make([]ssFinding, 0, 1000)
		for i := range 1000 {
			tok := flFakeKey("test", "sk")
			if i%10 == 0 {
				tok = apiCreateKey(t, servers[0], tn.Admin.Key, map[string]any{"name": "bulk"}).Key
			}
			fs = append(fs, ssFind(tok, "nexus_test_secret_key"))
		}
		start := time.Now()
		labels = signer.report(t, servers[1], fs)
		elapsed := time.Since(start)
		n := 0
		for _, l := range labels {
			if l.Label == "true_positive" {
				n++
			}
		}
		if n != 100 {
			t.Errorf("%d true positives among 1000, want 100", n)
		}
		t.Logf("%s: a report of 1000 tokens (100 real) answered in %s", b.Name, elapsed.Round(time.Millisecond))
	})
}

// Reports are bounded: per client IP like /oauth/*, and by the body size,
// before any signature is checked.
func TestSecretScanningLimits(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b *Backend) {
		signer := ssNewSigner(t)
		s := b.NewServer(t, signer.file, "NEXUS_IP_RATE_LIMIT=3")
		body := []byte(`[]`)
		oversized := `[` + strings.Repeat(`{"token":"x","type":"t","url":"u","source":"content"},`, 25000) + `{}]`
		r := doOversized(t, s, "POST", "/secret-scanning/github", H{"Content-Type": "application/json",
			"Github-Public-Key-Identifier": signer.id, "Github-Public-Key-Signature": signer.sign(t, []byte(oversized))}, oversized)
		wantError(t, r, 413, "body_too_large")
		for range 3 { // the oversized one, refused before routing, does not count
			if r := ssPost(t, s, body, signer.id, signer.sign(t, body)); r.Status != 200 || string(r.Body) != "[]" {
				t.Fatalf("an empty report: %s", r)
			}
		}
		r = ssPost(t, s, body, signer.id, signer.sign(t, body))
		wantError(t, r, 429, "rate_limited")
		if r.Header.Get("Retry-After") == "" {
			t.Errorf("429 without Retry-After: %s", r)
		}
	})
}
