package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"
)

func TestIsUnavailable(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"refused dial", &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}, true},
		{"wrapped reset", fmt.Errorf("query: %w", syscall.ECONNRESET), true},
		{"connection closed under the query", io.EOF, true},
		{"deadline", fmt.Errorf("x: %w", context.DeadlineExceeded), true},
		{"no rows", sql.ErrNoRows, false},
		{"a bug", errors.New("syntax error at or near"), false},
		{"nil", nil, false},
	} {
		if got := IsUnavailable(tc.err); got != tc.want {
			t.Errorf("%s: IsUnavailable(%v) = %v, want %v", tc.name, tc.err, got, tc.want)
		}
	}
}
