package auth_test

import (
	"os"
	"testing"

	"github.com/nexus-fintech/nexus/internal/store/storetest"
)

// TestMain reports the backends skipped (storetest.Main).
func TestMain(m *testing.M) { os.Exit(storetest.Main(m)) }
