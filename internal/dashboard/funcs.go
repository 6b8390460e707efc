package dashboard

import (
	"html/template"
	"strconv"
	"strings"
	"time"
)

var funcs = template.FuncMap{
	"statusClass": statusClass,
	"itoa":        itoa,
	"list":        func(v ...string) []string { return v },
	// money writes an amount in minor units with its currency's decimals.
	"money": money,
	"join":  func(l []string) string { return strings.Join(l, ", ") },
	// when writes a time in UTC to the minute, or a dash for none.
	"when": func(v any) string {
		switch t := v.(type) {
		case time.Time:
			if !t.IsZero() {
				return t.UTC().Format("2006-01-02 15:04 UTC")
			}
		case *time.Time:
			if t != nil && !t.IsZero() {
				return t.UTC().Format("2006-01-02 15:04 UTC")
			}
		}
		return "—"
	},
}

func money(amount int64, currency string) string {
	dec := 6
	if currency == "btc" {
		dec = 8
	}
	neg := amount < 0
	if neg {
		amount = -amount
	}
	s := strconv.FormatInt(amount, 10)
	for len(s) <= dec {
		s = "0" + s
	}
	s = s[:len(s)-dec] + "." + s[len(s)-dec:]
	if neg {
		s = "-" + s
	}
	return s + " " + strings.ToUpper(currency)
}
