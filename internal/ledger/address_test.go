package ledger

import (
	"testing"

	"github.com/nexus-fintech/nexus/internal/nexus"
)

func TestNormalizeAddress(t *testing.T) {
	tests := []struct {
		name    string
		network Network
		env     nexus.Environment
		addr    string
		wantKey string
		wantErr bool
	}{
		// EIP-55 vectors from the EIP itself.
		{"eip55 valid", Ethereum, nexus.Live, "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed", "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed", false},
		{"eip55 valid 2", Ethereum, nexus.Live, "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359", "0xfb6916095ca1df60bb79ce92ce3ea74c37c5d359", false},
		{"eip55 wrong case", Ethereum, nexus.Live, "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD", "", true},
		{"all lower", Ethereum, nexus.Live, "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed", "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed", false},
		{"all upper", Ethereum, nexus.Live, "0x5AAEB6053F3E94C9B9A09F33669435E7EF1BEAED", "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed", false},
		{"eth short", Ethereum, nexus.Live, "0x5aaeb6053f3e94c9b9a09f33669435e7ef1bea", "", true},
		{"eth no 0x", Ethereum, nexus.Live, "5aaeb6053f3e94c9b9a09f33669435e7ef1beaed00", "", true},
		{"eth non hex", Ethereum, nexus.Live, "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaeg", "", true},
		{"p2pkh", Bitcoin, nexus.Live, "1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2", "1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2", false},
		{"p2sh", Bitcoin, nexus.Live, "3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy", "3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy", false},
		{"p2pkh bad checksum", Bitcoin, nexus.Live, "1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN3", "", true},
		{"bech32 v0", Bitcoin, nexus.Live, "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4", "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4", false},
		{"bech32 upper", Bitcoin, nexus.Live, "BC1QW508D6QEJXTDG4Y5R3ZARVARY0C5XW7KV8F3T4", "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4", false},
		{"bech32m taproot", Bitcoin, nexus.Live, "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqzk5jj0", "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqzk5jj0", false},
		{"bech32 bad checksum", Bitcoin, nexus.Live, "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t5", "", true},
		{"v1 with bech32 checksum", Bitcoin, nexus.Live, "bc1pw508d6qejxtdg4y5r3zarvary0c5xw7kw508d6qejxtdg4y5r3zarvary0c5xw7k7grplx", "", true},
		{"testnet bech32 in test", Bitcoin, nexus.Test, "tb1qw508d6qejxtdg4y5r3zarvary0c5xw7kxpjzsx", "tb1qw508d6qejxtdg4y5r3zarvary0c5xw7kxpjzsx", false},
		{"testnet bech32 in live", Bitcoin, nexus.Live, "tb1qw508d6qejxtdg4y5r3zarvary0c5xw7kxpjzsx", "", true},
		{"testnet p2pkh in test", Bitcoin, nexus.Test, "mipcBbFg9gMiCh81Kj8tqqdgoZub1ZJRfn", "mipcBbFg9gMiCh81Kj8tqqdgoZub1ZJRfn", false},
		{"testnet p2pkh in live", Bitcoin, nexus.Live, "mipcBbFg9gMiCh81Kj8tqqdgoZub1ZJRfn", "", true},
		{"garbage", Bitcoin, nexus.Live, "hello", "", true},
		{"eth on bitcoin", Bitcoin, nexus.Live, "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := normalizeAddress(tt.network, tt.env, tt.addr)
			if (err != nil) != tt.wantErr {
				t.Fatalf("normalizeAddress(%q) error = %v, want error %v", tt.addr, err, tt.wantErr)
			}
			if got != tt.wantKey {
				t.Errorf("key = %q, want %q", got, tt.wantKey)
			}
			if err != nil && nexus.CodeOf(err) != nexus.CodeParameterInvalid {
				t.Errorf("code = %s, want parameter_invalid", nexus.CodeOf(err))
			}
		})
	}
}

func FuzzNormalizeAddress(f *testing.F) {
	for _, s := range []string{"0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed", "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4", "1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2", "bc1", "1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, n := range []Network{Bitcoin, Ethereum} {
			key, err := normalizeAddress(n, nexus.Test, s)
			if err == nil && key == "" {
				t.Fatalf("accepted %q with an empty key", s)
			}
		}
	})
}
