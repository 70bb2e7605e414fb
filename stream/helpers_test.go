package stream

import (
	"github.com/dpiawatch/dpiawatch/store/teststores"
	"github.com/dpiawatch/dpiawatch/testlog"
)

// The stream's tests run against both stores (teststores).
var (
	forEachStore  = teststores.ForEach
	openTestStore = teststores.SQLite
	testLogger    = testlog.New
)
