package oauth

import (
	"encoding/base64"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nexus-fintech/nexus/internal/nexus"
	"github.com/nexus-fintech/nexus/internal/store"
)

var phc = regexp.MustCompile(`^\$argon2id\$v=19\$m=19456,t=2,p=1\$([A-Za-z0-9+/]{22})\$([A-Za-z0-9+/]{43})$`)

func TestHashPasswordRoundTrip(t *testing.T) {
	t.Parallel()
	for _, pw := range []string{"correct horse battery staple", "ünïcødé-pässwörd-🔑", strings.Repeat("x", 256)} {
		h := HashPassword(pw)
		if !checkPassword(h, pw) {
			t.Errorf("checkPassword(HashPassword(%q)) = false", pw)
		}
		if checkPassword(h, pw+"!") || checkPassword(h, strings.ToUpper(pw)) || checkPassword(h, "") {
			t.Errorf("hash of %q accepts a wrong password", pw)
		}
	}
}

func TestHashPasswordFormat(t *testing.T) {
	t.Parallel()
	h1, h2 := HashPassword("same password 123"), HashPassword("same password 123")
	for _, h := range []string{h1, h2} {
		m := phc.FindStringSubmatch(h)
		if m == nil {
			t.Fatalf("%q is not a PHC argon2id string with the OWASP parameters", h)
		}
		salt, err1 := base64.RawStdEncoding.DecodeString(m[1])
		key, err2 := base64.RawStdEncoding.DecodeString(m[2])
		if err1 != nil || err2 != nil || len(salt) != 16 || len(key) != 32 {
			t.Fatalf("%q: salt %d bytes, key %d bytes (%v %v)", h, len(salt), len(key), err1, err2)
		}
	}
	if h1 == h2 {
		t.Fatal("two hashes of one password are equal: the salt is not random")
	}
	if phc.FindStringSubmatch(h1)[1] == phc.FindStringSubmatch(h2)[1] {
		t.Fatal("two hashes share a salt")
	}
	if !checkPassword(h1, "same password 123") || !checkPassword(h2, "same password 123") {
		t.Fatal("a salted hash does not verify")
	}
}

func TestCheckPasswordTampered(t *testing.T) {
	t.Parallel()
	const pw = "the password 42"
	h := HashPassword(pw)
	parts := strings.Split(h, "$") // "", argon2id, v=19, m=…,t=…,p=…, salt, key
	join := func(p ...string) string { return strings.Join(p, "$") }
	flip := func(s string) string { // change the first character, keep it base64
		b := []byte(s)
		if b[0] == 'A' {
			b[0] = 'B'
		} else {
			b[0] = 'A'
		}
		return string(b)
	}
	cases := []struct{ name, hash string }{
		{"empty", ""},
		{"garbage", "not a hash"},
		{"bcrypt", "$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy"},
		{"argon2i", join("", "argon2i", parts[2], parts[3], parts[4], parts[5])},
		{"too few parts", join("", "argon2id", parts[2], parts[3], parts[4])},
		{"too many parts", h + "$extra"},
		{"key flipped", join("", "argon2id", parts[2], parts[3], parts[4], flip(parts[5]))},
		{"key truncated", join("", "argon2id", parts[2], parts[3], parts[4], parts[5][:40])},
		{"salt flipped", join("", "argon2id", parts[2], parts[3], flip(parts[4]), parts[5])},
		{"memory changed", join("", "argon2id", parts[2], "m=19455,t=2,p=1", parts[4], parts[5])},
		{"passes changed", join("", "argon2id", parts[2], "m=19456,t=3,p=1", parts[4], parts[5])},
		{"params garbage", join("", "argon2id", parts[2], "m=x,t=2,p=1", parts[4], parts[5])},
		{"salt not base64", join("", "argon2id", parts[2], parts[3], "!!!", parts[5])},
		{"key not base64", join("", "argon2id", parts[2], parts[3], parts[4], "!!!")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if checkPassword(tc.hash, pw) {
				t.Fatalf("checkPassword(%q) accepted the password", tc.hash)
			}
		})
	}
}

// A stored hash whose parameters or key were damaged must answer "no", not
// crash the login handler or accept any password.
func TestCheckPasswordDegenerateHash(t *testing.T) {
	t.Parallel()
	parts := strings.Split(HashPassword("the password 42"), "$")
	join := func(p ...string) string { return strings.Join(p, "$") }
	cases := []struct{ name, hash string }{
		{"empty key", join("", "argon2id", parts[2], parts[3], parts[4], "")},
		{"zero passes", join("", "argon2id", parts[2], "m=19456,t=0,p=1", parts[4], parts[5])},
		{"zero lanes", join("", "argon2id", parts[2], "m=19456,t=2,p=0", parts[4], parts[5])},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var ok bool
			func() {
				defer func() {
					if r := recover(); r != nil {
						t.Fatalf("regression: members.go:60-68 checkPassword passes unchecked t/p/key length to argon2.IDKey, which panics on %q: %v (fix: return false unless t>=1, p>=1, len(want)==argonKeyLen, parts[2]==\"v=19\", and m within a sane bound)", tc.hash, r)
					}
				}()
				ok = checkPassword(tc.hash, "any password at all")
			}()
			if ok {
				t.Fatalf("checkPassword(%q) accepts any password", tc.hash)
			}
		})
	}
}

func TestCreateMember(t *testing.T) {
	t.Parallel()
	f := newFx(t)
	m, err := f.svc.CreateMember(f.ctx, f.user.ID, "  Alice@Example.COM ", "long enough password")
	if err != nil {
		t.Fatal(err)
	}
	if m.Email != "alice@example.com" || m.Object != "member" || m.PartnerID != f.user.ID || !strings.HasPrefix(m.ID, "mbr_") {
		t.Fatalf("member = %+v", m)
	}
	if !phc.MatchString(m.PasswordHash) || !checkPassword(m.PasswordHash, "long enough password") {
		t.Fatalf("stored hash %q", m.PasswordHash)
	}

	cases := []struct {
		name, partner, email, password, param string
	}{
		{"duplicate email", f.user.ID, "alice@example.com", "another long password", "email"},
		{"duplicate email other case", f.user.ID, "ALICE@example.com ", "another long password", "email"},
		{"duplicate email other partner", f.dev.ID, "alice@example.com", "another long password", "email"},
		{"no at sign", f.user.ID, "alice.example.com", "long enough password", "email"},
		{"empty email", f.user.ID, "   ", "long enough password", "email"},
		{"email too long", f.user.ID, strings.Repeat("a", 250) + "@x.io", "long enough password", "email"},
		{"password 11 chars", f.user.ID, "bob@example.com", "elevenchars", "password"},
		{"password empty", f.user.ID, "bob@example.com", "", "password"},
		{"password 257 chars", f.user.ID, "bob@example.com", strings.Repeat("p", 257), "password"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.svc.CreateMember(f.ctx, tc.partner, tc.email, tc.password)
			e := wantNexus(t, err, nexus.CodeParameterInvalid)
			if e.Param != tc.param {
				t.Fatalf("param %q, want %q", e.Param, tc.param)
			}
		})
	}
	t.Run("password 12 chars accepted", func(t *testing.T) {
		if _, err := f.svc.CreateMember(f.ctx, f.user.ID, "bob@example.com", "twelve chars"); err != nil {
			t.Fatal(err)
		}
	})
}

func TestLoginSessionLogout(t *testing.T) {
	t.Parallel()
	f := newFx(t)
	m, err := f.svc.CreateMember(f.ctx, f.user.ID, "alice@example.com", "long enough password")
	if err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct{ name, email, pw string }{
		{"unknown email", "nobody@example.com", "long enough password"},
		{"wrong password", "alice@example.com", "long enough passwore"},
		{"empty password", "alice@example.com", ""},
		{"empty email", "", "long enough password"},
		// The database cannot compare these: unknown, not an error.
		{"email with NUL", "alice\x00@example.com", "long enough password"},
		{"email not UTF-8", "alice\xff@example.com", "long enough password"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok, err := f.svc.Login(f.ctx, tc.email, tc.pw)
			if !errors.Is(err, ErrLoginFailed) || tok != "" {
				t.Fatalf("Login = %q, %v; want ErrLoginFailed", tok, err)
			}
		})
	}

	tok, err := f.svc.Login(f.ctx, " ALICE@example.com", "long enough password")
	if err != nil || tok == "" {
		t.Fatalf("Login: %q %v", tok, err)
	}
	tok2, err := f.svc.Login(f.ctx, "alice@example.com", "long enough password")
	if err != nil || tok2 == tok {
		t.Fatalf("second Login: %q %v (first %q)", tok2, err, tok)
	}
	s, err := f.svc.Session(f.ctx, tok)
	if err != nil || s == nil || s.MemberID != m.ID || s.PartnerID != f.user.ID {
		t.Fatalf("Session = %+v, %v", s, err)
	}
	// Only the digest is stored.
	if n, err := f.cross("looks for a raw session id").Select((*session)(nil)).Where("id_hash = ?", tok).Count(f.ctx); err != nil || n != 0 {
		t.Fatalf("session token stored in clear (%d rows, %v)", n, err)
	}

	for _, tc := range []struct{ name, tok string }{{"empty", ""}, {"unknown", randomToken()}, {"digest as token", digest(tok)}} {
		t.Run("session "+tc.name, func(t *testing.T) {
			if s, err := f.svc.Session(f.ctx, tc.tok); s != nil || err != nil {
				t.Fatalf("Session(%q) = %+v, %v; want nil", tc.tok, s, err)
			}
		})
	}

	t.Run("expired", func(t *testing.T) {
		f.setExpiry("sessions", "id_hash", digest(tok2), store.Now().Add(-time.Second))
		if s, err := f.svc.Session(f.ctx, tok2); s != nil || err != nil {
			t.Fatalf("expired Session = %+v, %v; want nil", s, err)
		}
		f.setExpiry("sessions", "id_hash", digest(tok2), store.Now().Add(time.Minute))
		if s, err := f.svc.Session(f.ctx, tok2); s == nil || err != nil {
			t.Fatalf("renewed Session = %+v, %v", s, err)
		}
	})

	t.Run("logout", func(t *testing.T) {
		if err := f.svc.Logout(f.ctx, tok); err != nil {
			t.Fatal(err)
		}
		if s, err := f.svc.Session(f.ctx, tok); s != nil || err != nil {
			t.Fatalf("Session after Logout = %+v, %v", s, err)
		}
		if s, _ := f.svc.Session(f.ctx, tok2); s == nil {
			t.Fatal("Logout ended another session too")
		}
		if err := f.svc.Logout(f.ctx, tok); err != nil {
			t.Fatalf("second Logout: %v", err)
		}
		if err := f.svc.Logout(f.ctx, "unknown"); err != nil {
			t.Fatalf("Logout(unknown): %v", err)
		}
	})
}
