package call

import (
	"testing"

	"ccpbx/internal/pbxtest"
)

// TestMain fails the package's run if any test left a goroutine running
// (a leg still dialling, a bridge, a timer).
func TestMain(m *testing.M) { pbxtest.VerifyNoLeaks(m) }
