//go:build !unix

package redistest

import "os"

// Without Unix signals, Stop kills the server, and Pause and Resume fail:
// os.Process.Signal refuses any signal but os.Kill there.
var (
	sigTerm                    = os.Kill
	sigStop, sigCont os.Signal = unsupported{}, unsupported{}
)

type unsupported struct{}

func (unsupported) String() string { return "unsupported" }
func (unsupported) Signal()        {}
