package ledger

import (
	"crypto/sha256"
	"encoding/hex"
	"math/big"
	"strings"

	"golang.org/x/crypto/sha3"

	"github.com/nexus-fintech/nexus/internal/nexus"
)

// Network is a payment network an address lives on.
type Network string

const (
	Bitcoin  Network = "bitcoin"
	Ethereum Network = "ethereum"
)

// normalizeAddress validates addr for network and returns the key that
// makes two spellings of one address equal (ethereum is case-insensitive).
func normalizeAddress(network Network, env nexus.Environment, addr string) (string, error) {
	switch network {
	case Ethereum:
		if err := validEthereum(addr); err != nil {
			return "", err
		}
		return strings.ToLower(addr), nil
	case Bitcoin:
		if err := validBitcoin(env, addr); err != nil {
			return "", err
		}
		if strings.HasPrefix(strings.ToLower(addr), "bc1") || strings.HasPrefix(strings.ToLower(addr), "tb1") {
			return strings.ToLower(addr), nil // bech32 is case-insensitive
		}
		return addr, nil
	}
	return "", nexus.ParamError(nexus.CodeParameterInvalid, "network", "network must be bitcoin or ethereum")
}

func badAddress(format string, args ...any) error {
	return nexus.ParamError(nexus.CodeParameterInvalid, "address", format, args...)
}

// validEthereum: 0x + 40 hex digits; a mixed-case address must carry a
// valid EIP-55 checksum (all-lower and all-upper carry none).
func validEthereum(addr string) error {
	if len(addr) != 42 || !strings.HasPrefix(addr, "0x") {
		return badAddress("an ethereum address is 0x followed by 40 hex digits")
	}
	body := addr[2:]
	if _, err := hex.DecodeString(body); err != nil {
		return badAddress("an ethereum address is 0x followed by 40 hex digits")
	}
	if body == strings.ToLower(body) || body == strings.ToUpper(body) {
		return nil
	}
	if body != eip55(body) {
		return badAddress("the ethereum address's EIP-55 checksum (its mix of upper and lower case) is wrong")
	}
	return nil
}

// eip55 spells a 40-digit hex address with the EIP-55 checksum casing.
func eip55(body string) string {
	lower := strings.ToLower(body)
	h := sha3.NewLegacyKeccak256()
	h.Write([]byte(lower))
	sum := h.Sum(nil)
	out := []byte(lower)
	for i, c := range out {
		if c >= 'a' && c <= 'f' {
			nibble := sum[i/2] >> 4
			if i%2 == 1 {
				nibble = sum[i/2] & 0x0f
			}
			if nibble >= 8 {
				out[i] = c - 32
			}
		}
	}
	return string(out)
}

// validBitcoin accepts base58check (P2PKH, P2SH) and bech32/bech32m segwit
// addresses of the environment's networks: mainnet in live; mainnet or
// testnet in test.
func validBitcoin(env nexus.Environment, addr string) error {
	lower := strings.ToLower(addr)
	if strings.HasPrefix(lower, "bc1") || strings.HasPrefix(lower, "tb1") {
		hrp := lower[:2]
		if hrp == "tb" && env == nexus.Live {
			return badAddress("testnet addresses are not accepted in live")
		}
		if !validSegwit(hrp, addr) {
			return badAddress("not a valid bech32 bitcoin address")
		}
		return nil
	}
	version, ok := base58Check(addr)
	if !ok {
		return badAddress("not a valid bitcoin address (base58check or bech32)")
	}
	switch version {
	case 0x00, 0x05:
		return nil
	case 0x6f, 0xc4:
		if env == nexus.Test {
			return nil
		}
		return badAddress("testnet addresses are not accepted in live")
	}
	return badAddress("not a bitcoin address version")
}

const base58Alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"

// base58Check decodes a 25-byte base58check payload and returns its version.
func base58Check(s string) (byte, bool) {
	if len(s) < 26 || len(s) > 35 {
		return 0, false
	}
	n := new(big.Int)
	radix := big.NewInt(58)
	for i := 0; i < len(s); i++ {
		d := strings.IndexByte(base58Alphabet, s[i])
		if d < 0 {
			return 0, false
		}
		n.Mul(n, radix).Add(n, big.NewInt(int64(d)))
	}
	b := n.Bytes()
	for i := 0; i < len(s) && s[i] == '1'; i++ {
		b = append([]byte{0}, b...)
	}
	if len(b) != 25 {
		return 0, false
	}
	first := sha256.Sum256(b[:21])
	second := sha256.Sum256(first[:])
	if string(second[:4]) != string(b[21:]) {
		return 0, false
	}
	return b[0], true
}

const bech32Charset = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"

func bech32Polymod(values []byte) uint32 {
	gen := [5]uint32{0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3}
	chk := uint32(1)
	for _, v := range values {
		top := chk >> 25
		chk = (chk&0x1ffffff)<<5 ^ uint32(v)
		for i := 0; i < 5; i++ {
			if (top>>uint(i))&1 == 1 {
				chk ^= gen[i]
			}
		}
	}
	return chk
}

// validSegwit checks a BIP-173 (witness v0, bech32) or BIP-350 (v1+,
// bech32m) address for hrp.
func validSegwit(hrp, addr string) bool {
	if len(addr) > 90 || (addr != strings.ToLower(addr) && addr != strings.ToUpper(addr)) {
		return false
	}
	addr = strings.ToLower(addr)
	pos := strings.LastIndexByte(addr, '1')
	if pos != len(hrp) || pos+7 > len(addr) {
		return false
	}
	data := make([]byte, 0, len(addr)-pos-1)
	for _, c := range addr[pos+1:] {
		d := strings.IndexRune(bech32Charset, c)
		if d < 0 {
			return false
		}
		data = append(data, byte(d))
	}
	exp := make([]byte, 0, len(hrp)*2+1+len(data))
	for _, c := range hrp {
		exp = append(exp, byte(c)>>5)
	}
	exp = append(exp, 0)
	for _, c := range hrp {
		exp = append(exp, byte(c)&31)
	}
	exp = append(exp, data...)
	const bech32Const, bech32mConst = 1, 0x2bc830a3
	check := bech32Polymod(exp)
	payload := data[:len(data)-6]
	if len(payload) == 0 {
		return false
	}
	version := payload[0]
	if version > 16 {
		return false
	}
	if (version == 0 && check != bech32Const) || (version != 0 && check != bech32mConst) {
		return false
	}
	prog, ok := convertBits(payload[1:], 5, 8, false)
	if !ok || len(prog) < 2 || len(prog) > 40 {
		return false
	}
	return version != 0 || len(prog) == 20 || len(prog) == 32
}

func convertBits(data []byte, from, to uint, pad bool) ([]byte, bool) {
	acc, bits := uint32(0), uint(0)
	maxv := uint32(1)<<to - 1
	var out []byte
	for _, v := range data {
		acc = acc<<from | uint32(v)
		bits += from
		for bits >= to {
			bits -= to
			out = append(out, byte(acc>>bits&maxv))
		}
	}
	if pad {
		if bits > 0 {
			out = append(out, byte(acc<<(to-bits)&maxv))
		}
	} else if bits >= from || acc<<(to-bits)&maxv != 0 {
		return nil, false
	}
	return out, true
}
