package daemon

import "github.com/dpiawatch/dpiawatch/testlog"

var testLogger = testlog.New
