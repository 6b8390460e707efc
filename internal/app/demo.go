package app

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/nexus-fintech/nexus/internal/apikey"
	"github.com/nexus-fintech/nexus/internal/nexus"
	"github.com/nexus-fintech/nexus/internal/partner"
)

// demoPartnerName marks the partner --demo creates and reuses.
const demoPartnerName = "Demo partner (nexus serve --demo)"

// printDemo makes sure an approved demo partner exists and prints a fresh
// test secret key with a request to try. The key goes to stdout, never to
// the log.
func printDemo(ctx context.Context, w io.Writer, partners *partner.Service, keys *apikey.Service, base string) error {
	all, err := partners.List(ctx)
	if err != nil {
		return err
	}
	var p nexus.Partner
	for _, x := range all {
		if x.Name == demoPartnerName {
			p = x
			break
		}
	}
	if p.ID == "" {
		if p, err = partners.Create(ctx, partner.CreateParams{Name: demoPartnerName, Status: nexus.PartnerApproved}); err != nil {
			return err
		}
	}
	k, err := keys.Create(ctx, nexus.Tenant{PartnerID: p.ID, Environment: nexus.Test}, apikey.CreateParams{Name: "demo"})
	if err != nil {
		return err
	}
	base = strings.Replace(base, "127.0.0.1", "localhost", 1)
	_, err = fmt.Fprintf(w, `
Nexus is running at %[1]s with a demo partner (%[2]s).
A test secret key, shown only now:

    %[3]s

Try it:

    curl -s %[1]s/v1/partner -H "Authorization: Bearer %[3]s"

`, base, p.ID, k.Plain)
	return err
}
