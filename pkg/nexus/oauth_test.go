package nexus

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"golang.org/x/oauth2"
)

func TestOAuthConfigEndpoints(t *testing.T) {
	conf := OAuthConfig("https://api.nexus.example/", "cli_1", "nx_live_cs_x", "https://app.example/cb", "read:balances", "read:funding")
	if conf.Endpoint.AuthURL != "https://api.nexus.example/oauth/authorize" ||
		conf.Endpoint.TokenURL != "https://api.nexus.example/oauth/token" ||
		conf.Endpoint.AuthStyle != oauth2.AuthStyleInHeader {
		t.Errorf("endpoint = %+v", conf.Endpoint)
	}
	if pub := OAuthConfig("https://api.nexus.example", "cli_2", "", "https://app.example/cb"); pub.Endpoint.AuthStyle != oauth2.AuthStyleInParams {
		t.Errorf("public client auth style = %v, want in params", pub.Endpoint.AuthStyle)
	}
}

func TestPKCEFlow(t *testing.T) {
	verifier, challenge := PKCE()
	if len(verifier) < 43 {
		t.Fatalf("verifier %q too short for RFC 7636", verifier)
	}
	sum := sha256.Sum256([]byte(verifier))
	wantChallenge := base64.RawURLEncoding.EncodeToString(sum[:])

	for _, tc := range []struct {
		name, secret string
	}{{"confidential", "nx_test_cs_secret"}, {"public", ""}} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != "/oauth/token" || r.Method != http.MethodPost {
					http.NotFound(w, r)
					return
				}
				r.ParseForm()
				id, secret, basic := r.BasicAuth()
				switch {
				case tc.secret != "" && (!basic || id != "cli_1" || secret != tc.secret):
					t.Errorf("confidential client: basic auth %v %q %q", basic, id, secret)
				case tc.secret == "" && (basic || r.PostForm.Get("client_id") != "cli_1" || r.PostForm.Has("client_secret")):
					t.Errorf("public client: basic %v, form %v", basic, r.PostForm)
				}
				if r.PostForm.Get("grant_type") != "authorization_code" || r.PostForm.Get("code") != "the-code" ||
					r.PostForm.Get("code_verifier") != verifier || r.PostForm.Get("redirect_uri") != "http://localhost:9999/cb" {
					t.Errorf("token form = %v", r.PostForm)
				}
				w.Header().Set("Content-Type", "application/json")
				w.Write([]byte(`{"access_token":"nx_test_at_x","token_type":"Bearer","expires_in":3600,"refresh_token":"nx_test_rt_x","scope":"read:balances"}`))
			}))
			defer srv.Close()

			conf := OAuthConfig(srv.URL, "cli_1", tc.secret, "http://localhost:9999/cb", "read:balances")
			u, err := url.Parse(conf.AuthCodeURL("st4te", challenge))
			if err != nil {
				t.Fatal(err)
			}
			q := u.Query()
			if u.Path != "/oauth/authorize" || q.Get("code_challenge") != wantChallenge || q.Get("code_challenge_method") != "S256" ||
				q.Get("client_id") != "cli_1" || q.Get("state") != "st4te" || q.Get("response_type") != "code" || q.Get("scope") != "read:balances" {
				t.Errorf("authorize URL = %s", u)
			}
			tok, err := conf.Exchange(context.Background(), "the-code", PKCEVerifier(verifier))
			if err != nil {
				t.Fatal(err)
			}
			if tok.AccessToken != "nx_test_at_x" || tok.RefreshToken != "nx_test_rt_x" || tok.Type() != "Bearer" {
				t.Errorf("token = %+v", tok)
			}
		})
	}
}
