package acd

// Every dispatch pass of the package's tests compares the cached
// candidate rows with a fresh build (dispatch.go, checkCands): a change
// to agents or tiers that forgets rowsChanged panics the test binary.
func init() { checkCands = true }
