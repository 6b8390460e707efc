package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"syscall"

	"github.com/uptrace/bun/driver/pgdriver"
	"modernc.org/sqlite"
)

// IsUnavailable reports an error that says the database could not be
// reached or did not answer in time, not that the statement was wrong:
// network errors, a connection closed under the query, a deadline, a
// PostgreSQL that refuses connections or is shutting down, a SQLite file
// locked beyond its busy timeout. The request may succeed when retried, so
// it is answered 503 rather than 500. Classified by type and code, never by
// message text.
func IsUnavailable(err error) bool {
	if err == nil {
		return false
	}
	var pgErr pgdriver.Error
	if errors.As(err, &pgErr) {
		code := pgErr.Field('C')
		switch {
		case strings.HasPrefix(code, "08"): // connection_exception
			return true
		case code == "57P01", code == "57P02", code == "57P03": // admin or crash shutdown, cannot connect now
			return true
		case code == "53300": // too_many_connections
			return true
		case code == "57014": // query_canceled, the statement_timeout included
			return true
		}
		return false
	}
	var sqErr *sqlite.Error
	if errors.As(err, &sqErr) {
		const busy, locked = 5, 6
		primary := sqErr.Code() & 0xff
		return primary == busy || primary == locked
	}
	var netErr net.Error
	switch {
	case errors.As(err, &netErr):
		return true
	case errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, driver.ErrBadConn),
		errors.Is(err, sql.ErrConnDone),
		errors.Is(err, io.EOF),
		errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, net.ErrClosed),
		errors.Is(err, syscall.ECONNREFUSED),
		errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.EPIPE):
		return true
	}
	return false
}

// RouteDriverLogs sends the PostgreSQL driver's own messages (a broken
// connection discarded, …) to log as warnings, so that JSON logs stay JSON.
func RouteDriverLogs(log *slog.Logger) { pgdriver.Logger = driverLogger{log} }

type driverLogger struct{ log *slog.Logger }

func (l driverLogger) Printf(ctx context.Context, format string, v ...any) {
	l.log.WarnContext(ctx, "pgdriver: "+fmt.Sprintf(format, v...))
}
