package registrar

import (
	"testing"

	"ccpbx/internal/pbxtest"
)

// TestMain fails the package's run if any test left a goroutine running
// (a persistence writer, an expiry timer).
func TestMain(m *testing.M) { pbxtest.VerifyNoLeaks(m) }
