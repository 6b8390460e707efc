package oauth

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"

	"github.com/nexus-fintech/nexus/internal/audit"
	"github.com/nexus-fintech/nexus/internal/nexus"
	"github.com/nexus-fintech/nexus/internal/store"

	"github.com/uptrace/bun"
)

// Member is a person of a partner who can log in and consent.
type Member struct {
	bun.BaseModel `bun:"table:members"`

	ID           string    `bun:"id,pk" json:"id"`
	Object       string    `bun:"-" json:"object"`
	PartnerID    string    `bun:"partner_id" json:"partner_id"`
	Email        string    `bun:"email" json:"email"`
	Role         Role      `bun:"role" json:"role"`
	PasswordHash string    `bun:"password_hash" json:"-"`
	CreatedAt    time.Time `bun:"created_at" json:"created_at"`
}

// argon2id parameters: OWASP's minimum (19 MiB, 2 passes, 1 lane).
const (
	argonTime    = 2
	argonMemory  = 19 * 1024
	argonThreads = 1
	argonKeyLen  = 32
)

// HashPassword returns a PHC-format argon2id hash.
func HashPassword(pw string) string {
	salt := make([]byte, 16)
	_, _ = rand.Read(salt)
	key := argon2.IDKey([]byte(pw), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argonMemory, argonTime, argonThreads,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key))
}

// checkPassword compares in constant time.
func checkPassword(hash, pw string) bool {
	parts := strings.Split(hash, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false
	}
	var m, t uint32
	var p uint8
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil {
		return false
	}
	salt, err1 := base64.RawStdEncoding.DecodeString(parts[4])
	want, err2 := base64.RawStdEncoding.DecodeString(parts[5])
	// A damaged row must fail the login, not crash it (argon2 panics on
	// zero passes or lanes) nor make it arbitrarily slow.
	if err1 != nil || err2 != nil || parts[2] != fmt.Sprintf("v=%d", argon2.Version) ||
		t < 1 || t > 10 || p < 1 || m < 8*uint32(p) || m > 1<<20 || len(want) != argonKeyLen {
		return false
	}
	got := argon2.IDKey([]byte(pw), salt, t, m, p, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1
}

// dummyHash is the hash a login for an unknown email is checked against,
// to be as slow as a wrong password. Made on first use, not when the
// package loads: an argon2id hash costs every start ~90 ms (and 19 MiB).
var dummyHash = sync.OnceValue(func() string { return HashPassword("nexus-timing-equaliser") })

// CreateMember adds an owner to a partner.
func (s *Service) CreateMember(ctx context.Context, partnerID, email, password string) (*Member, error) {
	return s.CreateMemberWithRole(ctx, partnerID, email, password, Owner)
}

// CreateMemberWithRole adds a member to a partner with role (Owner when
// empty).
func (s *Service) CreateMemberWithRole(ctx context.Context, partnerID, email, password string, role Role) (*Member, error) {
	m, err := newMember(partnerID, email, password, role)
	if err != nil {
		return nil, err
	}
	err = s.db.Tx(ctx, func(ctx context.Context, tx bun.Tx) error { return insertMember(ctx, tx, m, nil) })
	if err != nil {
		return nil, err
	}
	return m, nil
}

// newMember checks a new member's fields and hashes the password.
func newMember(partnerID, email, password string, role Role) (*Member, error) {
	email = strings.ToLower(strings.TrimSpace(email))
	if err := checkEmail(email); err != nil {
		return nil, err
	}
	if role == "" {
		role = Owner
	}
	if !role.Valid() {
		return nil, nexus.ParamError(nexus.CodeParameterInvalid, "role", "role must be owner, admin, developer or viewer")
	}
	if len(password) < 12 || len(password) > 256 {
		return nil, nexus.ParamError(nexus.CodeParameterInvalid, "password", "passwords are 12 to 256 characters")
	}
	return &Member{ID: nexus.NewID("mbr"), Object: "member", PartnerID: partnerID, Email: email, Role: role,
		PasswordHash: HashPassword(password), CreatedAt: store.Now()}, nil
}

func checkEmail(email string) error {
	if !strings.Contains(email, "@") || len(email) > 254 || strings.ContainsAny(email, " \t\r\n") {
		return nexus.ParamError(nexus.CodeParameterInvalid, "email", "a valid email is required")
	}
	return nil
}

// members is the handle on partnerID's members, sessions and invitations
// (partner-wide: they belong to no environment).
func members(idb bun.IDB, partnerID string) store.Scope {
	return store.For(idb, nexus.Tenant{PartnerID: partnerID})
}

// insertMember writes m and its member.created events (in both
// environments: members are the partner's, not an environment's).
func insertMember(ctx context.Context, tx bun.Tx, m *Member, data map[string]any) error {
	if _, err := members(tx, m.PartnerID).Insert(m).Exec(ctx); err != nil {
		if store.IsUniqueViolation(err) {
			return nexus.ParamError(nexus.CodeParameterInvalid, "email", "a member with this email exists")
		}
		return err
	}
	if data == nil {
		data = map[string]any{}
	}
	data["role"] = m.Role
	for _, env := range []nexus.Environment{nexus.Live, nexus.Test} {
		if err := audit.Record(ctx, tx, nexus.Tenant{PartnerID: m.PartnerID, Environment: env}, "member.created", m.ID, data); err != nil {
			return err
		}
	}
	return nil
}

// GetMember returns one member of a partner (another partner's is not found).
func (s *Service) GetMember(ctx context.Context, partnerID, id string) (*Member, error) {
	m, err := store.Get[Member](ctx, members(s.db.DB, partnerID), "member", id)
	if err != nil {
		return nil, err
	}
	m.Object = "member"
	return m, nil
}

// CheckPassword re-checks a signed-in member's password before a
// sensitive action (a live secret key, a live revocation).
func (s *Service) CheckPassword(ctx context.Context, m *Member, password string) (bool, error) {
	release, ok := s.passwords.Acquire(ctx)
	if !ok {
		return false, ErrBusy
	}
	defer release()
	return checkPassword(m.PasswordHash, password), nil
}

type session struct {
	bun.BaseModel `bun:"table:sessions"`

	IDHash    string    `bun:"id_hash,pk"`
	MemberID  string    `bun:"member_id"`
	PartnerID string    `bun:"partner_id"`
	CreatedAt time.Time `bun:"created_at"`
	// ExpiresAt is the absolute end; LastSeenAt starts the idle timeout.
	ExpiresAt  time.Time  `bun:"expires_at"`
	LastSeenAt *time.Time `bun:"last_seen_at"`
}

// Session is a logged-in member.
type Session struct {
	MemberID  string
	PartnerID string
	Email     string // the member's
}

// ErrLoginFailed is the one answer for a wrong email or password.
var ErrLoginFailed = errors.New("the email or password is wrong")

// Login checks a member's password and opens a session; the returned
// token is the cookie value (only its digest is stored). When every
// password-check slot stays busy it answers ErrBusy, for a known email or
// not alike.
func (s *Service) Login(ctx context.Context, email, password string) (string, error) {
	m, err := s.checkMember(ctx, email, password)
	if err != nil {
		return "", err
	}
	tok := randomToken()
	now := store.Now()
	_, err = members(s.db.DB, m.PartnerID).Insert(&session{IDHash: digest(tok), MemberID: m.ID, PartnerID: m.PartnerID, CreatedAt: now, ExpiresAt: now.Add(SessionTTL), LastSeenAt: &now}).Exec(ctx)
	return tok, err
}

// checkMember finds the member of email and checks its password, holding
// a password-check slot meanwhile.
func (s *Service) checkMember(ctx context.Context, email, password string) (*Member, error) {
	release, ok := s.passwords.Acquire(ctx)
	if !ok {
		return nil, ErrBusy
	}
	defer release()
	m := new(Member)
	email = strings.ToLower(strings.TrimSpace(email))
	err := sql.ErrNoRows
	// No member has an email the database cannot even compare (a NUL
	// byte, invalid UTF-8): refuse it as unknown, as slowly.
	if utf8.ValidString(email) && !strings.ContainsRune(email, 0) {
		err = store.CrossTenant(s.db.DB, "member email at sign-in: the email names the partner").Select(m).
			Where("email = ?", email).Scan(ctx)
	}
	if errors.Is(err, sql.ErrNoRows) {
		checkPassword(dummyHash(), password)
		return nil, ErrLoginFailed
	}
	if err != nil {
		return nil, err
	}
	if !checkPassword(m.PasswordHash, password) {
		return nil, ErrLoginFailed
	}
	return m, nil
}

// Session returns the session for a cookie value, or nil when there is
// none, it passed its absolute end (SessionTTL after login) or it sat
// unused longer than SessionIdle. Use keeps it alive: last_seen_at is
// written at most once a minute, so reading a page costs no write.
func (s *Service) Session(ctx context.Context, tok string) (*Session, error) {
	if tok == "" {
		return nil, nil
	}
	row := new(session)
	now := store.Now()
	err := store.CrossTenant(s.db.DB, "session id: the cookie names the partner").Select(row).
		Where("id_hash = ?", digest(tok)).Where("expires_at > ?", now).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	seen := row.CreatedAt
	if row.LastSeenAt != nil {
		seen = *row.LastSeenAt
	}
	if now.Sub(seen) >= SessionIdle {
		return nil, nil
	}
	if now.Sub(seen) >= time.Minute {
		if _, err := members(s.db.DB, row.PartnerID).Update((*session)(nil)).Set("last_seen_at = ?", now).
			Where("?TableAlias.id_hash = ?", row.IDHash).Exec(ctx); err != nil {
			return nil, err
		}
	}
	sess := &Session{MemberID: row.MemberID, PartnerID: row.PartnerID}
	// The member's email comes along: the consent page names who grants.
	err = members(s.db.DB, row.PartnerID).Select((*Member)(nil)).Column("email").
		Where("?TableAlias.id = ?", row.MemberID).Scan(ctx, &sess.Email)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil // the member was removed
	}
	if err != nil {
		return nil, err
	}
	return sess, nil
}

// Logout ends a session.
func (s *Service) Logout(ctx context.Context, tok string) error {
	_, err := store.CrossTenant(s.db.DB, "session id at logout: the cookie names the partner").Delete((*session)(nil)).
		Where("id_hash = ?", digest(tok)).Exec(ctx)
	return err
}
