package nexus_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/nexus-fintech/nexus/pkg/nexus"
)

// Create a withdrawal to a payout address, and handle the errors a
// withdrawal can meet. The idempotency key ties the call to the order it
// pays, so running this twice for one order (after a crash, say) pays once.
func Example() {
	ctx := context.Background()
	c := nexus.NewClient(os.Getenv("NEXUS_API_KEY"),
		nexus.WithBaseURL("https://api.nexus.example"))

	addr, err := c.Addresses.Create(ctx, &nexus.AddressCreateParams{
		Network: nexus.NetworkEthereum,
		Address: "0x52908400098527886E0F7030069857D2E4169EE7",
		Label:   "treasury",
	})
	if err != nil {
		log.Fatal(err)
	}

	req, err := c.Requests.Create(ctx, &nexus.RequestCreateParams{
		Amount:    2_500_000, // 2.50 USDC, in minor units
		Currency:  nexus.CurrencyUSDC,
		AddressID: addr.ID,
		Metadata:  map[string]string{"order": "ord_42"},
	}, nexus.WithIdempotencyKey("withdrawal-ord_42"))
	switch {
	case nexus.IsCode(err, nexus.CodeInsufficientFunds):
		log.Fatal("not enough USDC available")
	case err != nil:
		log.Fatal(err) // *nexus.Error: status, code, message, request id
	}
	fmt.Println(req.ID, req.Status)

	// Every pending request, across pages.
	for r, err := range c.Requests.All(ctx, &nexus.RequestListParams{Status: nexus.RequestStatusPending}) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(r.ID, r.Amount, r.Currency)
	}
}
